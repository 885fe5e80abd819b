"""Request counts aggregated in memory between flushes.

A request becomes one :class:`UsageKey`; the counter adds 1 to it. ``take()`` empties the
counter and returns what it held, ``restore()`` merges counts back (used when they could not
be handed over), so nothing is lost or counted twice while the process lives.

Memory is bounded: past ``max_keys`` distinct keys, new keys lose their project attribution
(slug and key hash become None), which leaves only a few hundred possible keys per day.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bugnet_common.apikeys import is_well_formed
from bugnet_common.bus.events import UsageCount
from bugnet_gateway.usage.grouping import classify_path, status_class

DEFAULT_MAX_KEYS = 50_000


@dataclass(frozen=True)
class UsageKey:
    date: str  # YYYY-MM-DD, UTC
    project_slug: str | None
    api_key_hash: str | None
    group: str
    status_class: str
    rate_limited: bool
    refused_by_gateway: bool

    def count(self, n: int) -> UsageCount:
        return UsageCount(
            date=self.date,
            project_slug=self.project_slug,
            api_key_hash=self.api_key_hash,
            group=self.group,
            status_class=self.status_class,
            rate_limited=self.rate_limited,
            refused_by_gateway=self.refused_by_gateway,
            count=n,
        )


@dataclass(frozen=True)
class Request:
    """What the collector knows of one finished request (from one access-log entry).

    ``api_key`` is the raw ``X-API-Key`` header: it lives only in memory, is hashed by
    :func:`key_for` and never logged or published.
    """

    started_at: datetime
    method: str
    path: str
    status: int
    refused_by_gateway: bool
    api_key: str | None = None

    def __repr__(self) -> str:  # never print the key, even in a traceback or a debug log
        return (
            f"Request(started_at={self.started_at!r}, method={self.method!r}, "
            f"path={self.path!r}, status={self.status}, "
            f"refused_by_gateway={self.refused_by_gateway}, api_key=<redacted>)"
        )


def hash_key(api_key: str | None) -> str | None:
    """SHA-256 hex of a well-formed key (what bugnet_common.apikeys stores); else None."""
    if not api_key:
        return None
    api_key = api_key.strip()
    if not is_well_formed(api_key):
        return None
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_for(request: Request) -> UsageKey:
    group, slug = classify_path(request.method, request.path)
    # A project route names its project by the slug; the key identifies the project of the
    # routes outside projects/{slug} (the SDK endpoints).
    key_hash = None if slug is not None else hash_key(request.api_key)
    started = request.started_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return UsageKey(
        date=started.astimezone(UTC).date().isoformat(),
        project_slug=slug,
        api_key_hash=key_hash,
        group=group,
        status_class=status_class(request.status),
        rate_limited=request.status == 429,
        refused_by_gateway=request.refused_by_gateway,
    )


class UsageCounter:
    """Counts per :class:`UsageKey`; used from one asyncio loop (no locking)."""

    def __init__(self, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._counts: Counter[UsageKey] = Counter()
        self.unattributed = 0  # requests whose project was dropped because of max_keys

    def __len__(self) -> int:
        return len(self._counts)

    def __bool__(self) -> bool:
        return bool(self._counts)

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def add(self, request: Request) -> UsageKey:
        return self.add_key(key_for(request))

    def add_key(self, key: UsageKey, n: int = 1) -> UsageKey:
        if key not in self._counts and len(self._counts) >= self.max_keys:
            if key.project_slug is not None or key.api_key_hash is not None:
                self.unattributed += n
            key = UsageKey(
                date=key.date,
                project_slug=None,
                api_key_hash=None,
                group=key.group,
                status_class=key.status_class,
                rate_limited=key.rate_limited,
                refused_by_gateway=key.refused_by_gateway,
            )
        self._counts[key] += n
        return key

    def snapshot(self) -> dict[UsageKey, int]:
        return dict(self._counts)

    def take(self) -> dict[UsageKey, int]:
        """Everything counted so far; the counter starts again from zero."""
        counts, self._counts = self._counts, Counter()
        return dict(counts)

    def restore(self, counts: Mapping[UsageKey, int]) -> None:
        """Merges counts back (for example a batch that was never sent)."""
        for key, n in counts.items():
            self.add_key(key, n)


def to_usage_counts(counts: Mapping[UsageKey, int]) -> list[UsageCount]:
    """Counts as the bus contract's items, in a stable order."""
    return [key.count(n) for key, n in sorted(counts.items(), key=_sort_key) if n > 0]


def chunks(counts: Mapping[UsageKey, int], size: int) -> Iterable[dict[UsageKey, int]]:
    """Splits counts into pieces of at most ``size`` keys (one event each)."""
    items = sorted(counts.items(), key=_sort_key)
    for start in range(0, len(items), size):
        yield dict(items[start : start + size])


def _sort_key(item: tuple[UsageKey, int]) -> tuple[str, ...]:
    k = item[0]
    return (
        k.date,
        k.project_slug or "",
        k.api_key_hash or "",
        k.group,
        k.status_class,
        str(k.rate_limited),
        str(k.refused_by_gateway),
    )
