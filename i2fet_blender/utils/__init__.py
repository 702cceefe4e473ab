"""Small helpers for the extension, one concern per module."""
