"""The sdk area of the bugs service."""
