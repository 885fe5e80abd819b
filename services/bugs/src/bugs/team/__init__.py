"""The team area of the bugs service."""
