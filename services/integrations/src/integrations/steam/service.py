"""Use cases of the Steam area: settings, the review import and the dashboard.

The import (`sync`) runs inside the request, bounded by `steam_sync_max_pages` pages and
`steam_sync_deadline_seconds` (under the gateway's 30 s route timeout), so its result — the
counts — is the answer. It walks the store review API newest first from the first page until
it reaches reviews it already has (caught up), the end, or a repeated cursor. When it runs out
of budget it records where it stopped (`backfill_cursor`) and the next sync, once caught up,
continues there, so a game with a long history is imported over a few syncs. All pages are
fetched before anything is written: reviews are inserted in one transaction (ON CONFLICT DO
NOTHING on the recommendation id), and a failure on any page stores nothing. One sync at a
time per project (`sync_lease_until`, claimed and released in their own transactions).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, func, select
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import utcnow
from bugnet_common.openapi import Date, Timestamp

from .. import crypto
from ..models import ProjectRef
from ..settings import IntegrationsSettings
from ..views import iso
from . import client
from .mentions import mentions
from .models import SteamIntegration, SteamReview
from .schemas import SteamIn, SteamPatch

STEAM = SteamIntegration.__table__  # type: ignore[attr-defined]
REVIEWS = SteamReview.__table__  # type: ignore[attr-defined]
RECENT = 10


def _hint(key: str) -> str:
    return "…" + key[-4:]


class SteamIntegrationOut(TypedDict):
    app_id: int
    has_api_key: Annotated[bool, Field(description="The key itself is never returned.")]
    api_key_hint: str | None
    last_synced_at: Timestamp | None
    sync_complete: Annotated[bool, Field(
        description="The whole review history has been imported.")]
    created_at: Timestamp
    updated_at: Timestamp


def integration_out(steam: SteamIntegration) -> SteamIntegrationOut:
    """The settings as shown to members: never the API key, only whether there is one."""
    return {"app_id": steam.app_id, "has_api_key": steam.api_key_encrypted is not None,
            "api_key_hint": steam.api_key_hint, "last_synced_at": iso(steam.last_synced_at),
            "sync_complete": steam.backfill_cursor is None and steam.last_synced_at is not None,
            "created_at": iso(steam.created_at), "updated_at": iso(steam.updated_at)}


def get_integration(*, session: Session, project: ProjectRef) -> SteamIntegration:
    """The project's Steam settings; 404 when there are none."""
    steam = session.get(SteamIntegration, project.id)
    if steam is None:
        raise errors.NotFound("No Steam integration is configured for this project")
    return steam


def _set_key(steam: SteamIntegration, key: str | None, settings: IntegrationsSettings) -> None:
    steam.api_key_encrypted = None if key is None else crypto.encrypt(settings.secret(), key)
    steam.api_key_hint = None if key is None else _hint(key)


def create_integration(*, session: Session, project: ProjectRef, data: SteamIn, actor_id: str,
                       settings: IntegrationsSettings) -> SteamIntegration:
    """Connect the project to a Steam app; 409 when it already is (PATCH changes it)."""
    if session.get(SteamIntegration, project.id) is not None:
        raise errors.Conflict("A Steam integration is already configured; use PATCH to change it")
    now = utcnow()
    steam = SteamIntegration(project_id=project.id, app_id=data.app_id, created_by=actor_id,
                             created_at=now, updated_at=now)
    _set_key(steam, data.api_key, settings)
    session.add(steam)
    try:
        session.commit()
    except sa.exc.IntegrityError:  # a concurrent request created it first
        session.rollback()
        raise errors.Conflict("A Steam integration is already configured; "
                              "use PATCH to change it") from None
    return steam


def update_integration(*, session: Session, project: ProjectRef, data: SteamPatch,
                       settings: IntegrationsSettings) -> SteamIntegration:
    """Change the app id and/or the API key. Another app id drops the previous app's reviews
    and sync position."""
    steam = get_integration(session=session, project=project)
    sent = data.model_fields_set
    if "app_id" in sent and data.app_id is not None and data.app_id != steam.app_id:
        session.exec(sa.delete(REVIEWS).where(REVIEWS.c.project_id == project.id))  # type: ignore[call-overload]
        steam.app_id = data.app_id
        steam.summary = None
        steam.backfill_cursor = None
        steam.last_synced_at = None
    if "api_key" in sent:
        _set_key(steam, data.api_key, settings)
    steam.updated_at = utcnow()
    session.add(steam)
    session.commit()
    return steam


def delete_integration(*, session: Session, project: ProjectRef) -> SteamIntegration:
    """Disconnect the project from Steam; its imported reviews go with it."""
    steam = get_integration(session=session, project=project)
    session.delete(steam)
    session.commit()
    return steam


# ---- sync -----------------------------------------------------------------------------------

class _Walk:
    """The pages of one sync: what was fetched, within the page and time budget."""

    def __init__(self, *, session: Session, steam: SteamIntegration,
                 settings: IntegrationsSettings, http: httpx.Client) -> None:
        self.session, self.steam, self.settings, self.http = session, steam, settings, http
        self.base_url = settings.steam_store_url
        self.deadline = time.monotonic() + settings.steam_sync_deadline_seconds
        self.pages = 0
        self.fetched = 0
        self.collected: dict[str, client.Review] = {}
        self.summary: dict[str, Any] | None = None

    def _budget_left(self) -> float | None:
        """Seconds left for the next page, or None when the budget is spent."""
        left = self.deadline - time.monotonic()
        if self.pages >= self.settings.steam_sync_max_pages or left <= 0.5:
            return None
        return min(left, self.settings.steam_timeout_seconds)

    def _known(self, ids: list[str]) -> set[str]:
        rows = self.session.exec(select(SteamReview.recommendation_id).where(
            SteamReview.project_id == self.steam.project_id,
            col(SteamReview.recommendation_id).in_(ids))).all()
        self.session.commit()  # no transaction stays open while the next page is fetched
        return set(rows)

    def walk(self, cursor: str, *, stop_at_known: bool) -> str | None:
        """Fetch pages from `cursor`; the cursor to continue from when the budget ran out,
        None when the walk ended (caught up, last page, or a repeated cursor)."""
        seen = {cursor}
        while True:
            timeout = self._budget_left()
            if timeout is None:
                return cursor
            page = client.fetch_page(self.http, base_url=self.base_url, app_id=self.steam.app_id,
                                     cursor=cursor, timeout=timeout)
            self.pages += 1
            if cursor == "*" and page.summary is not None:
                self.summary = page.summary
            if not page.reviews:
                return None
            self.fetched += len(page.reviews)
            known = self._known([r.recommendation_id for r in page.reviews])
            new = [r for r in page.reviews
                   if r.recommendation_id not in known and r.recommendation_id not in self.collected]
            for review in new:
                self.collected[review.recommendation_id] = review
            if stop_at_known and (known or not new):
                return None
            if page.cursor is None or page.cursor in seen:
                return None
            seen.add(page.cursor)
            cursor = page.cursor


def _claim(session: Session, project_id: str, seconds: float) -> None:
    now = utcnow()
    claimed = session.exec(sa.update(STEAM).where(  # type: ignore[call-overload]
        STEAM.c.project_id == project_id,
        sa.or_(STEAM.c.sync_lease_until.is_(None), STEAM.c.sync_lease_until < now))
        .values(sync_lease_until=now + timedelta(seconds=seconds))
        .returning(STEAM.c.project_id)).first()
    session.commit()
    if claimed is None:
        raise errors.Conflict("A Steam sync is already running for this project")


def _release(session: Session, project_id: str) -> None:
    session.rollback()
    session.exec(sa.update(STEAM).where(STEAM.c.project_id == project_id)  # type: ignore[call-overload]
                 .values(sync_lease_until=None))
    session.commit()


def _row(project_id: str, app_id: int, review: client.Review,
         imported_at: datetime) -> dict[str, Any]:
    return {"project_id": project_id, "app_id": app_id,
            "recommendation_id": review.recommendation_id,
            "author_steam_id": review.author_steam_id, "language": review.language,
            "review": review.review, "voted_up": review.voted_up, "votes_up": review.votes_up,
            "playtime_at_review_minutes": review.playtime_at_review_minutes,
            "mentions": mentions(review.review), "created_at": review.created_at,
            "updated_at": review.updated_at, "imported_at": imported_at}


class SteamSyncOut(TypedDict):
    imported: Annotated[int, Field(description="New reviews stored.")]
    skipped: Annotated[int, Field(description="Fetched reviews that were already stored.")]
    pages: int
    complete: Annotated[bool, Field(description=(
        "False: the rest of the history is imported by the next syncs."))]
    synced_at: Timestamp


def sync(*, session: Session, project: ProjectRef,
         settings: IntegrationsSettings) -> SteamSyncOut:
    """Import the app's new reviews; `{imported, skipped, pages, complete}`."""
    steam = get_integration(session=session, project=project)
    lease = settings.steam_sync_deadline_seconds + settings.steam_timeout_seconds + 30
    _claim(session, project.id, lease)
    try:
        with httpx.Client(follow_redirects=False, trust_env=False) as http:
            walk = _Walk(session=session, steam=steam, settings=settings, http=http)
            backfill = steam.backfill_cursor
            stopped = walk.walk("*", stop_at_known=True)
            if stopped is not None:  # out of budget before catching up: continue there next
                backfill = stopped
            elif backfill is not None:
                backfill = walk.walk(backfill, stop_at_known=False)
        now = utcnow()
        current = session.exec(sa.select(STEAM.c.app_id)  # type: ignore[call-overload]
                               .where(STEAM.c.project_id == project.id).with_for_update()).first()
        if current is None or current[0] != steam.app_id:
            raise errors.Conflict("The Steam integration changed during the sync; sync again")
        rows = [_row(project.id, steam.app_id, r, now) for r in walk.collected.values()]
        imported = 0
        for start in range(0, len(rows), 500):
            result = session.exec(pg_insert(REVIEWS).values(rows[start:start + 500])  # type: ignore[call-overload]
                                  .on_conflict_do_nothing(
                                      constraint="uq_steam_reviews_recommendation")
                                  .returning(REVIEWS.c.id))
            imported += len(result.all())
        values: dict[str, Any] = {"backfill_cursor": backfill, "last_synced_at": now,
                                  "sync_lease_until": None}
        if walk.summary is not None:
            values["summary"] = walk.summary
        session.exec(sa.update(STEAM).where(STEAM.c.project_id == project.id)  # type: ignore[call-overload]
                     .values(**values))
        session.commit()
    except BaseException:
        _release(session, project.id)
        raise
    return {"imported": imported, "skipped": walk.fetched - imported, "pages": walk.pages,
            "complete": backfill is None, "synced_at": iso(now)}


# ---- dashboard ------------------------------------------------------------------------------

def _share(positive: int, total: int) -> float | None:
    return round(positive * 100 / total, 2) if total else None


class SteamReviewOut(TypedDict):
    recommendation_id: str
    voted_up: bool
    review: str
    language: str | None
    votes_up: int
    playtime_at_review_minutes: int | None
    mentions: Annotated[list[str], Field(
        description="The bug and crash terms the review mentions.")]
    url: str | None
    created_at: Timestamp


class ReviewCountsOut(TypedDict):
    total: int
    positive: int
    negative: int
    positive_share: Annotated[float | None, Field(
        description="Percent, two decimals; null without reviews.")]
    bug_mentions: int


class ReviewWindowOut(ReviewCountsOut):
    days: int


class ReviewDayOut(TypedDict):
    date: Date
    total: int
    positive: int
    negative: int
    positive_share: float | None


class BugMentionsOut(TypedDict):
    total: int
    window: int
    terms: Annotated[dict[str, int], Field(
        description="Each term and how many reviews mention it.")]
    recent: list[SteamReviewOut]


class SteamDashboardOut(TypedDict):
    app_id: int
    last_synced_at: Timestamp | None
    reviews: ReviewCountsOut
    window: ReviewWindowOut
    steam_summary: Annotated[dict[str, Any] | None, Field(
        description="Steam's own totals (its query_summary) at the last sync.")]
    trend: list[ReviewDayOut]
    recent_negative: list[SteamReviewOut]
    bug_mentions: BugMentionsOut


def review_out(review: SteamReview) -> SteamReviewOut:
    url = None
    if review.author_steam_id:
        url = (f"https://steamcommunity.com/profiles/{review.author_steam_id}"
               f"/recommended/{review.app_id}/")
    return {"recommendation_id": review.recommendation_id, "voted_up": review.voted_up,
            "review": review.review, "language": review.language, "votes_up": review.votes_up,
            "playtime_at_review_minutes": review.playtime_at_review_minutes,
            "mentions": review.mentions, "url": url, "created_at": iso(review.created_at)}


def _counts(session: Session, project_id: str, since: datetime | None) -> dict[str, int]:
    mentioned = func.jsonb_array_length(REVIEWS.c.mentions) > 0
    query = sa.select(func.count(), func.count().filter(REVIEWS.c.voted_up.is_(True)),
                      func.count().filter(mentioned)).where(REVIEWS.c.project_id == project_id)
    if since is not None:
        query = query.where(REVIEWS.c.created_at >= since)
    total, positive, bug_mentions = session.exec(query).one()  # type: ignore[call-overload]
    return {"total": int(total), "positive": int(positive), "negative": int(total - positive),
            "bug_mentions": int(bug_mentions)}


def dashboard(*, session: Session, project: ProjectRef, days: int) -> SteamDashboardOut:
    """Review counts, positive share, a daily trend over `days`, recent negative reviews and
    the reviews that mention bugs or crashes."""
    steam = get_integration(session=session, project=project)
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)

    every = _counts(session, project.id, None)
    window = _counts(session, project.id, since)
    day = func.date(func.timezone("UTC", REVIEWS.c.created_at))
    per_day: dict[date, tuple[int, int]] = {
        d: (int(t), int(p)) for d, t, p in session.exec(  # type: ignore[call-overload]
            sa.select(day, func.count(), func.count().filter(REVIEWS.c.voted_up.is_(True)))
            .where(REVIEWS.c.project_id == project.id, REVIEWS.c.created_at >= since)
            .group_by(day))}
    trend: list[ReviewDayOut] = []
    for i in range(days):
        d = first + timedelta(days=i)
        total, positive = per_day.get(d, (0, 0))
        trend.append({"date": d.isoformat(), "total": total, "positive": positive,
                      "negative": total - positive, "positive_share": _share(positive, total)})

    newest = (col(SteamReview.created_at).desc(), col(SteamReview.id).desc())
    negatives = session.exec(select(SteamReview).where(
        SteamReview.project_id == project.id, col(SteamReview.voted_up).is_(False))
        .order_by(*newest).limit(RECENT)).all()
    mentioning = session.exec(select(SteamReview).where(
        SteamReview.project_id == project.id,
        func.jsonb_array_length(REVIEWS.c.mentions) > 0).order_by(*newest).limit(RECENT)).all()
    term = func.jsonb_array_elements_text(REVIEWS.c.mentions).table_valued("value").alias("term")
    terms = session.exec(sa.select(term.c.value, func.count())  # type: ignore[call-overload]
                         .select_from(REVIEWS).join(term, sa.true())
                         .where(REVIEWS.c.project_id == project.id)
                         .group_by(term.c.value).order_by(func.count().desc(), term.c.value)).all()

    def block(c: dict[str, int]) -> ReviewCountsOut:
        return {"total": c["total"], "positive": c["positive"], "negative": c["negative"],
                "positive_share": _share(c["positive"], c["total"]),
                "bug_mentions": c["bug_mentions"]}

    return {
        "app_id": steam.app_id, "last_synced_at": iso(steam.last_synced_at),
        "reviews": block(every), "window": {"days": days, **block(window)},
        "steam_summary": steam.summary, "trend": trend,
        "recent_negative": [review_out(r) for r in negatives],
        "bug_mentions": {"total": every["bug_mentions"], "window": window["bug_mentions"],
                         "terms": {t: int(n) for t, n in terms},
                         "recent": [review_out(r) for r in mentioning]},
    }
