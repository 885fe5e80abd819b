"""GitHub / GitLab issues from bugs (spec §7, git rows)."""
