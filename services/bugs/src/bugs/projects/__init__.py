"""The projects area of the bugs service."""
