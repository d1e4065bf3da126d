"""The command line's computation (modes) and text (report)."""
