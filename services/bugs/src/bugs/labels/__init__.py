"""The labels area of the bugs service."""
