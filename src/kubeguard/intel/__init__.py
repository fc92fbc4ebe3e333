"""kubeguard."""
