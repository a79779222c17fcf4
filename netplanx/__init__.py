"""netx: declarative host networking, planned and applied like Terraform."""

__version__ = "0.1.0"
