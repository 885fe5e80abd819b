"""The public area of the bugs service."""
