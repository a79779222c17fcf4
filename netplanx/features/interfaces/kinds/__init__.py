"""Link kinds: one module each (its spec model and how netx reads, creates and changes it)."""
