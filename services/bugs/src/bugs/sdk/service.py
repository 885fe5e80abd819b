"""Use cases of the SDK endpoints: reports from game clients, crash grouping, attachments.

Invariants:
- One report is one transaction. Attachment bytes are written before the commit and deleted
  when the transaction fails, so a committed attachment row always has its bytes and a failed
  request leaves neither rows nor files behind.
- Reports of one crash (same project, same fingerprint) make one bug: a per-fingerprint
  transaction-level advisory lock serializes them, so two first reports arriving together
  cannot both create it, and the matched bug is row-locked while its counters change.
- `bugs.occurrences` equals the number of `occurrences` rows of a grouped bug (the first report
  is an occurrence too), so affected players can be counted from those rows.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col, func, select
from typing_extensions import TypedDict

from bugnet_common import errors, untrusted
from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import isoformat, utcnow
from bugnet_common.openapi import Timestamp, Uuid
from bugnet_common.versions import is_newer, newest, version_key

from ..enums import FIXED_STATUSES, Category, Priority, Source, Status
from ..events import emit, snapshot
from ..models import Activity, Attachment, Bug, Occurrence, Project
from ..reports import views as reports_views
from ..reports.schemas import BugIn
from ..reports.service import new_bug
from ..views import iso, project_settings
from . import fingerprint as fp
from .schemas import SdkReportIn
from .storage import AttachmentStorage, MissingObject, StorageError

log = logging.getLogger(__name__)

# A crash reported 100,000 times needs a few pictures, not 100,000.
MAX_SCREENSHOTS_PER_BUG = 10
CLIENT_SETTINGS = ("screenshot_capture", "session_capture", "auto_file_errors")

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_GIFS = (b"GIF87a", b"GIF89a")
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*?;base64,", re.IGNORECASE)
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=]")


# ---- settings -------------------------------------------------------------------------------

class ClientSettingsOut(TypedDict):
    """Which captures the studio switched on."""

    screenshot_capture: bool
    session_capture: bool
    auto_file_errors: bool


def client_settings(project: Project) -> ClientSettingsOut:
    """What an SDK asks at start-up: which captures the studio switched on."""
    current = project_settings(project)
    return ClientSettingsOut(screenshot_capture=bool(current["screenshot_capture"]),
                             session_capture=bool(current["session_capture"]),
                             auto_file_errors=bool(current["auto_file_errors"]))


class StoredAttachmentOut(reports_views.AttachmentOut):
    """An attachment just stored, with the bug it belongs to and its metadata."""

    bug_id: Uuid | None
    metadata: dict[str, Any]


class SubmittedReportOut(TypedDict):
    """What a submit answers: SDKs read `id`; `grouped` says it was an occurrence of an
    existing crash, `regressed` that this occurrence reopened a fixed one."""

    id: Uuid
    number: int
    title: str
    status: Status
    category: Category
    priority: Priority
    source: Source
    occurrences: int
    grouped: bool
    is_regression: bool
    regressed: bool
    fingerprint: str | None
    created_at: Timestamp
    last_seen_at: Timestamp | None
    screenshot: StoredAttachmentOut | None


# ---- files ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Upload:
    """Bytes checked and typed, ready to store."""

    data: bytes
    content_type: str
    extension: str


def _too_large(field: str, limit: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"'{field}' is larger than the {limit}-byte limit",
                                  details={field: f"must be at most {limit} bytes"})


def _bad(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"Invalid '{field}': {message}", details={field: message})


def decode_screenshot(raw: str, *, max_bytes: int) -> Upload:
    """A screenshot from a `data:image/png;base64,...` URI (or bare base64): PNG or JPEG only,
    at most `max_bytes` decoded."""
    match = _DATA_URI.match(raw[:256])
    if match is not None:
        mime = (match["mime"] or "").lower()
        if mime and not mime.startswith("image/"):
            raise _bad("screenshot", "must be a PNG or JPEG image")
        payload = raw[match.end():]
    elif raw[:5].lower() == "data:":
        raise _bad("screenshot", "must be a base64 data URI (data:image/png;base64,...)")
    else:
        payload = raw
    # Refuse an oversized image before spending memory on decoding it (base64 is 4/3 of the
    # bytes; allow for line breaks some encoders insert).
    if len(payload) > (max_bytes + 2) // 3 * 4 * 1.05 + 64:
        raise _too_large("screenshot", max_bytes)
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        data = _lenient_b64decode(payload)
    if len(data) > max_bytes:
        raise _too_large("screenshot", max_bytes)
    if data.startswith(_PNG):
        return Upload(data=data, content_type="image/png", extension=".png")
    if data.startswith(_JPEG):
        return Upload(data=data, content_type="image/jpeg", extension=".jpg")
    raise _bad("screenshot", "must be a PNG or JPEG image")


def _lenient_b64decode(payload: str) -> bytes:
    """Line-wrapped, unpadded or URL-safe base64, as some encoders write it."""
    cleaned = re.sub(r"\s+", "", payload).translate(str.maketrans("-_", "+/")).rstrip("=")
    if _NOT_BASE64.search(cleaned):
        raise _bad("screenshot", "is not valid base64")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except ValueError:
        raise _bad("screenshot", "is not valid base64") from None


def replay_upload(data: bytes) -> Upload:
    """A session replay: a GIF, or a JSON array of input events."""
    if data[:6] in _GIFS:
        return Upload(data=data, content_type="image/gif", extension=".gif")
    try:
        events = untrusted.parse_json(data)
    except (ValueError, UnicodeDecodeError):
        events = None
    if not isinstance(events, list):
        raise _bad("file", "must be a GIF or a JSON array of events")
    return Upload(data=data, content_type="application/json", extension=".json")


def attachment_out(attachment: Attachment, project: Project) -> StoredAttachmentOut:
    """An attachment as the bug detail shows it, plus the bug it belongs to and its metadata."""
    return StoredAttachmentOut(**reports_views.attachment_out(attachment, project),
                               bug_id=attachment.bug_id, metadata=attachment.meta)


@contextlib.contextmanager
def _stored(storage: AttachmentStorage, session: Session, key: str | None,
            upload: Upload | None) -> Iterator[None]:
    """Write `upload` under `key` before the block commits; remove it if the block fails."""
    if upload is None or key is None:
        yield
        return
    try:
        storage.put(key, upload.data, upload.content_type)
    except StorageError as exc:
        log.error("attachment write failed: %s", exc)
        raise errors.ServiceUnavailable("Attachment storage is unavailable; retry shortly") from exc
    try:
        yield
    except BaseException:
        session.rollback()
        _discard(storage, key)
        raise


def _discard(storage: AttachmentStorage, key: str) -> None:
    try:
        storage.delete(key)
    except StorageError as exc:  # an orphan file is harmless; a lost report is not
        log.warning("could not remove attachment %s: %s", key, exc)


# ---- reports --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Submitted:
    bug: Bug
    grouped: bool  # an occurrence of an existing bug, not a new one
    regressed: bool
    screenshot: Attachment | None


def player_key(data: BugIn) -> str:
    """Who hit the crash: the Steam id, else the player's name, else a hash of the device."""
    if data.reporter_steam_id:
        return f"steam:{data.reporter_steam_id}"
    if data.reporter_name:
        return f"name:{data.reporter_name}"
    device = "|".join(v or "" for v in (data.platform, data.os_info, data.device_info))
    return "device:" + hashlib.sha256(device.encode()).hexdigest()[:40]


def _lock_fingerprint(session: Session, project_id: str, fingerprint: str) -> Bug | None:
    """Serialize reports of one crash for the rest of the transaction; its bug, row-locked."""
    session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"bugs.fingerprint:{project_id}:{fingerprint}"})
    return session.exec(select(Bug).where(Bug.project_id == project_id,
                                          Bug.fingerprint == fingerprint)
                        .order_by(col(Bug.number)).limit(1).with_for_update()).first()


@dataclass
class Occurred:
    """What one more report of a grouped crash adds besides the bug's new counters."""

    occurrence: Occurrence
    activity: list[Activity]
    events: list[tuple[str, Any]]  # (subject, payload contract), in emit order
    regressed: bool


def _activity(bug_id: str, action: str, field: str, from_value: object, to_value: object,
              at: datetime) -> Activity:
    """An activity entry as `reports.service.record` writes it (no actor: the game did it)."""
    return Activity(id=str(uuid.uuid4()), bug_id=bug_id, actor_id=None, action=action,
                    field=field, from_value=str(from_value), to_value=str(to_value), created_at=at)


def apply_occurrence(bug: Bug, *, project: Project, data: BugIn, key: str,
                     now: datetime) -> Occurred:
    """Count one more report of `bug`'s crash on the object (counters, versions, platforms);
    reopen it when it recurs in a newer version than the one it was fixed in. Returns the rows
    and events that go with it; the caller writes them and the bug."""
    fixed_in = bug.resolved_in_version or bug.last_seen_version
    before = bug.occurrences
    bug.occurrences = before + 1
    bug.last_seen_at = now
    bug.last_seen_version = newest(bug.last_seen_version, data.game_version)
    bug.first_seen_version = bug.first_seen_version or data.game_version
    if data.game_version and data.game_version not in (bug.versions or []):
        bug.versions = sorted([*(bug.versions or []), data.game_version], key=version_key)
    if data.platform and data.platform not in (bug.platforms or []):
        bug.platforms = [*(bug.platforms or []), data.platform]
    occurrence = Occurrence(bug_id=bug.id, game_version=data.game_version,
                            platform=data.platform, player_key=key, created_at=now)
    activity = [_activity(bug.id, "occurred", "occurrences", before, bug.occurrences, now)]

    regressed = bug.status in FIXED_STATUSES and is_newer(data.game_version, fixed_in)
    changes: dict[str, dict[str, Any]] = {}
    if regressed:
        changes = {"status": {"from": bug.status, "to": "open"},
                   "resolved_at": {"from": iso(bug.resolved_at), "to": None}}
        if not bug.is_regression:
            changes["is_regression"] = {"from": False, "to": True}
        activity.append(_activity(bug.id, "regressed", "status", bug.status, "open", now))
        bug.status, bug.resolved_at, bug.is_regression = "open", None, True
        bug.resolved_in_version = None  # the next fix records its own version
        bug.updated_at = now

    snap = snapshot(bug, project)
    events: list[tuple[str, Any]] = [(subjects.BUG_OCCURRED, ev.BugOccurred(
        bug=snap, occurrences=bug.occurrences, game_version=data.game_version,
        platform=data.platform, player_key=key))]
    if regressed:
        events.append((subjects.BUG_REGRESSED, ev.BugChanged(bug=snap, changes=changes)))
        events.append((subjects.BUG_UPDATED, ev.BugChanged(bug=snap, changes=changes)))
    return Occurred(occurrence=occurrence, activity=activity, events=events, regressed=regressed)


def _add_occurrence(session: Session, *, project: Project, bug: Bug, data: BugIn,
                    key: str, now: datetime) -> bool:
    """Count one more report of `bug`'s crash (`apply_occurrence`) in the session. Returns
    whether it regressed."""
    occurred = apply_occurrence(bug, project=project, data=data, key=key, now=now)
    session.add(occurred.occurrence)
    for entry in occurred.activity:
        session.add(entry)
    session.add(bug)
    for subject, payload in occurred.events:
        emit(session, subject, payload)
    return occurred.regressed


def _screenshot_room(session: Session, bug_id: str) -> bool:
    count = session.exec(select(func.count()).select_from(Attachment).where(
        Attachment.bug_id == bug_id, Attachment.kind == "screenshot")).one()
    return int(count) < MAX_SCREENSHOTS_PER_BUG


def submit_report(*, session: Session, project: Project, data: SdkReportIn,
                  storage: AttachmentStorage, max_screenshot_bytes: int) -> Submitted:
    """File a game client's report: a new bug, or one more occurrence of the crash it repeats."""
    upload = decode_screenshot(data.screenshot, max_bytes=max_screenshot_bytes) \
        if data.screenshot else None
    bug_data = data.bug_in()
    fingerprint = None
    if fp.is_crash(title=bug_data.title, category=bug_data.category):
        fingerprint = fp.fingerprint(title=bug_data.title, description=bug_data.description,
                                     steps=bug_data.steps)
    attachment_id = str(uuid.uuid4())
    key = f"{project.id}/{attachment_id}{upload.extension}" if upload else None
    keep_screenshot = upload is not None
    now = utcnow()

    # The file goes first, outside the row locks below, so they are held only for the rows.
    with _stored(storage, session, key, upload):
        existing = _lock_fingerprint(session, project.id, fingerprint) if fingerprint else None
        regressed = False
        if existing is not None:
            bug = existing
            regressed = _add_occurrence(session, project=project, bug=bug, data=bug_data,
                                        key=player_key(bug_data), now=now)
            keep_screenshot = keep_screenshot and _screenshot_room(session, bug.id)
        else:
            bug = new_bug(session, project=project, data=bug_data, source="sdk",
                          reporter_user_id=None, fingerprint=fingerprint,
                          player_key=player_key(bug_data) if fingerprint else None)
            if fingerprint:
                session.add(Occurrence(bug_id=bug.id, game_version=bug_data.game_version,
                                       platform=bug_data.platform,
                                       player_key=player_key(bug_data), created_at=bug.created_at))
        screenshot = None
        if upload is not None and key is not None and keep_screenshot:
            screenshot = Attachment(id=attachment_id, project_id=project.id, bug_id=bug.id,
                                    kind="screenshot", content_type=upload.content_type,
                                    size=len(upload.data), storage_key=key,
                                    filename=f"screenshot{upload.extension}", created_at=now)
            session.add(screenshot)
        session.commit()
    if key is not None and not keep_screenshot:
        _discard(storage, key)
    return Submitted(bug=bug, grouped=existing is not None, regressed=regressed,
                     screenshot=screenshot)


def submitted_out(result: Submitted, project: Project) -> SubmittedReportOut:
    """What the submit answers: SDKs read `id`; the rest tells a human what happened."""
    bug = result.bug
    return SubmittedReportOut(
        id=bug.id, number=bug.number, title=bug.title, status=cast(Status, bug.status),
        category=cast(Category, bug.category), priority=cast(Priority, bug.priority),
        source=cast(Source, bug.source),
        occurrences=bug.occurrences, grouped=result.grouped,
        is_regression=bug.is_regression, regressed=result.regressed,
        fingerprint=bug.fingerprint, created_at=isoformat(bug.created_at),
        last_seen_at=iso(bug.last_seen_at),
        screenshot=attachment_out(result.screenshot, project) if result.screenshot else None,
    )


# ---- session replays ------------------------------------------------------------------------

def parse_duration(raw: str | None) -> float | None:
    """`duration_sec` as sent in a form: a non-negative number of seconds."""
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _bad("duration_sec", "must be a number") from None
    if not math.isfinite(value) or value < 0:
        raise _bad("duration_sec", "must be a number of seconds, 0 or more")
    return value


def parse_metadata(raw: str | None) -> dict[str, Any]:
    """`metadata` as sent in a form: JSON text of an object that PostgreSQL's jsonb can hold."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = untrusted.parse_json(raw, parse_constant=_no_constant)
    except ValueError:
        raise _bad("metadata", "must be JSON text") from None
    if not isinstance(value, dict):
        raise _bad("metadata", "must be a JSON object")
    if (problem := untrusted.find_unstorable(value)) is not None:
        raise _bad("metadata", f"{problem[0]} {problem[1]}")
    try:
        # jsonb refuses NaN/Infinity, NUL characters and lone surrogates; so does this.
        stored = json.dumps(value, ensure_ascii=False, allow_nan=False)
        stored.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise _bad("metadata", "must be valid UTF-8 JSON") from None
    if "\\u0000" in stored:
        raise _bad("metadata", "must not contain NUL characters")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def attach_replay(*, session: Session, project: Project, bug_id: str,
                  duration_sec: float | None, metadata: dict[str, Any], upload: Upload,
                  filename: str | None, storage: AttachmentStorage) -> Attachment:
    """Attach a session replay to a bug of the key's project."""
    wanted = _uuid_or_none(bug_id.strip())
    found = wanted and session.exec(select(Bug.id).where(
        Bug.id == wanted, Bug.project_id == project.id)).first()
    if not found:
        raise errors.NotFound("Bug not found")
    attachment_id = str(uuid.uuid4())
    key = f"{project.id}/{attachment_id}{upload.extension}"
    attachment = Attachment(id=attachment_id, project_id=project.id, bug_id=found, kind="replay",
                            content_type=upload.content_type, size=len(upload.data),
                            storage_key=key, duration_sec=duration_sec, meta=metadata,
                            filename=_safe_filename(filename) or f"session-replay{upload.extension}")
    with _stored(storage, session, key, upload):
        session.add(attachment)
        session.commit()
    return attachment


def _safe_filename(name: str | None) -> str | None:
    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._\- ]", "_", base).strip()[:255]
    return cleaned or None


# ---- downloads ------------------------------------------------------------------------------

def open_attachment(*, session: Session, project: Project, bug_id: str, attachment_id: str,
                    storage: AttachmentStorage) -> tuple[Attachment, Iterator[bytes]]:
    """An attachment of a bug of `project` and its bytes; 404 for anything else."""
    bug, wanted = _uuid_or_none(bug_id), _uuid_or_none(attachment_id)
    attachment = None
    if bug and wanted:
        attachment = session.exec(select(Attachment).where(
            Attachment.id == wanted, Attachment.bug_id == bug,
            Attachment.project_id == project.id)).first()
    if attachment is None:
        raise errors.NotFound("Attachment not found")
    try:
        return attachment, storage.stream(attachment.storage_key)
    except MissingObject:
        log.error("attachment %s has no stored bytes (%s)", attachment.id, attachment.storage_key)
        raise errors.NotFound("Attachment not found") from None
    except StorageError as exc:
        raise errors.ServiceUnavailable("Attachment storage is unavailable; retry shortly") \
            from exc
