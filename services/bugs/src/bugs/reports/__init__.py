"""The reports area of the bugs service."""
