"""A per-process memory of which project an API key hash belongs to, for the SDK routes that
resolve their key in the request (perf snapshots).

An entry lives at most `ttl` seconds (settings.api_key_cache_seconds, ≤ 1 s): with the read
model learning a rotation within about a second, a replaced key stops working within 2 s
and a new one starts working within 2 s (spec §6), while a busy game client costs one lookup
per second instead of one per request.
"""

from __future__ import annotations

import threading
import time

from bugnet_common.db import Database

from .access import project_id_for_key_hash

# Past this many entries the memory starts afresh (bounds what random keys can fill).
MAX_ENTRIES = 10_000


class KeyCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def project_id(self, db: Database, key_hash: str) -> str | None:
        """The project of the key with this hash; None for an unknown or replaced key."""
        now = time.monotonic()
        hit = self._entries.get(key_hash)
        if hit is not None and hit[1] > now:
            return hit[0]
        with db.session() as session:
            project_id = project_id_for_key_hash(session, key_hash)
        if self.ttl > 0:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key_hash] = (project_id, now + self.ttl)
        return project_id
