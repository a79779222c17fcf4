"""The stock-kernel VM for tests that need link kinds this kernel lacks (docs/testing.md)."""
