"""What the releases area adds to the bugs read model: an index for "bugs per release"
(created by migration 0004_regressions; declared here so the metadata matches the database)."""

from __future__ import annotations

import sqlalchemy as sa

from ..models import Bug

BUGS: sa.Table = Bug.__table__  # type: ignore[attr-defined]

BUGS_BY_VERSION = sa.Index("ix_analytics_bugs_project_version", BUGS.c.project_id,
                           BUGS.c.game_version,
                           postgresql_where=sa.text("game_version IS NOT NULL"))
