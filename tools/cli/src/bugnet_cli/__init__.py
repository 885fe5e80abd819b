"""The `bugnet` command: first user and project, and demo data, over the public API."""
