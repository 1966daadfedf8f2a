"""Business logic. Views and CLI commands call these functions; they take a Session and plain values."""
