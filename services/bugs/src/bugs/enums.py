"""The enumerations of spec §5, in one place."""

from typing import Literal, get_args

Status = Literal["open", "in_progress", "resolved", "closed", "wont_fix"]
Priority = Literal["low", "medium", "high", "critical"]
Category = Literal["crash", "visual", "gameplay", "performance", "audio", "ui", "network", "other"]
Sort = Literal["newest", "oldest", "priority", "votes", "updated"]
Source = Literal["dashboard", "api", "sdk", "public"]
Role = Literal["owner", "admin", "member"]

STATUSES: tuple[str, ...] = get_args(Status)
PRIORITIES: tuple[str, ...] = get_args(Priority)
CATEGORIES: tuple[str, ...] = get_args(Category)
SORTS: tuple[str, ...] = get_args(Sort)
FIXED_STATUSES = frozenset({"resolved", "closed"})
PRIORITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
