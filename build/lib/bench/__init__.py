"""Load, chaos and consistency checking: the bench process types."""
