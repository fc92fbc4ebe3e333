"""The audit webhook and the spool drainer behind it."""
