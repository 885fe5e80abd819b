"""Bad input on the SDK endpoints and the attachment download: a clear 4xx envelope that names
the field, and nothing written — no rows, no outbox events, no attachment files."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from integration.bugs.sdk_support import (
    attachment_files,
    bug_row,
    counts,
    gif_bytes,
    jpeg_bytes,
    png_bytes,
)

from bugnet_common import apikeys, errors
from bugs.models import Project
from bugs.sdk import service
from bugs.sdk.schemas import SdkReportIn
from bugs.sdk.storage import LocalStorage

PNG_URI = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()


@pytest.fixture()
def unchanged(bugs_db, bugs_settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Asserts, after the test, that it wrote no row, event or file."""
    before = counts(bugs_db), attachment_files(bugs_settings)
    yield
    assert (counts(bugs_db), attachment_files(bugs_settings)) == before


def _envelope(resp: Any, status: int, field: str | None = None) -> None:
    assert resp.status_code == status, resp.data[:300]
    assert resp.json["ok"] is False and resp.json["error"]
    if field is not None:
        assert field in resp.json["details"], resp.json
        assert field in resp.json["error"]


@pytest.fixture()
def key(client, user, project) -> str:  # type: ignore[no-untyped-def]
    return str(project(user("Owner"))["api_key"])


# ---- submit ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("category", "bug"), ("priority", "urgent"), ("title", "x" * 301), ("title", ""),
    ("title", 42), ("platform", "p" * 51), ("game_version", "1" * 51), ("os_info", "o" * 101),
    ("device_info", "d" * 201), ("steam_id", "7" * 31), ("reporter_name", "n" * 101),
    ("player_email", "not-an-email"), ("description", ["a"]), ("steps_to_reproduce", 3),
    ("screenshot", 12),
])
def test_submit_refuses_a_bad_field_by_name_and_writes_nothing(client, key, unchanged, field, value) -> None:  # type: ignore[no-untyped-def]
    body = {"title": "Crash on start", "category": "crash", field: value}
    _envelope(client.post("/api/bugs/submit", headers={"X-API-Key": key}, json=body), 400, field)


def test_submit_without_a_title_is_refused(client, key, unchanged) -> None:  # type: ignore[no-untyped-def]
    _envelope(client.post("/api/bugs/submit", headers={"X-API-Key": key},
                          json={"description": "no title"}), 400, "title")


@pytest.mark.parametrize(("screenshot", "status"), [
    ("data:image/gif;base64," + base64.b64encode(gif_bytes()).decode(), 400),  # not PNG/JPEG
    ("data:image/png;base64," + base64.b64encode(b"just some text").decode(), 400),
    ("data:image/png;base64,@@@not*base64@@@", 400),
    ("data:image/png;base64," + base64.b64encode(png_bytes())[:-7].decode() + "#", 400),
    ("data:text/plain;base64," + base64.b64encode(png_bytes()).decode(), 400),
    ("data:image/png," + "abc", 400),
])
def test_submit_refuses_a_screenshot_that_is_not_a_png_or_jpeg(client, key, unchanged, screenshot, status) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/bugs/submit", headers={"X-API-Key": key},
                       json={"title": "Crash", "screenshot": screenshot})
    _envelope(resp, status, "screenshot")


def test_submit_refuses_a_screenshot_over_the_cap_with_413(client, key, unchanged, bugs_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bugs_settings, "max_screenshot_bytes", 50_000)
    big = png_bytes(200, 100, noise=True)  # ~60 KB
    for uri in ("data:image/png;base64," + base64.b64encode(big).decode(),
                base64.b64encode(big).decode()):
        resp = client.post("/api/bugs/submit", headers={"X-API-Key": key},
                           json={"title": "Crash", "screenshot": uri})
        _envelope(resp, 413, "screenshot")
        assert resp.json["code"] == "payload_too_large"


def test_submit_accepts_jpeg_bare_base64_and_wrapped_lines(client, key, bugs_db) -> None:  # type: ignore[no-untyped-def]
    jpeg = jpeg_bytes()
    encoded = base64.encodebytes(jpeg).decode()  # MIME style: a line break every 76 characters
    for shot in ("data:image/jpeg;base64," + encoded, base64.b64encode(jpeg).decode().rstrip("=")):
        resp = client.post("/api/bugs/submit", headers={"X-API-Key": key},
                           json={"title": "Sky flickers", "screenshot": shot})
        assert resp.status_code == 201, resp.json
        assert resp.json["data"]["screenshot"]["content_type"] == "image/jpeg"
        assert resp.json["data"]["screenshot"]["size"] == len(jpeg)


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"", "application/json", 400),
    (b"title=x", "application/x-www-form-urlencoded", 415),
])
def test_submit_refuses_a_body_that_is_not_a_json_object(client, key, unchanged, body, content_type, status) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/bugs/submit", data=body,
                       headers={"X-API-Key": key, "Content-Type": content_type})
    _envelope(resp, status)


def _rotate(bugs_db: Any, project_id: str) -> str:
    """Regenerate the project's key the way the projects area stores it: only the hash."""
    new = apikeys.generate_api_key()
    with bugs_db.begin() as session:
        row = session.get(Project, project_id)
        row.api_key_hash, row.api_key_last4 = apikeys.hash_api_key(new), new[-4:]
    return new


def test_missing_malformed_unknown_and_revoked_keys_are_401_everywhere(client, user, project, bugs_db, bugs_settings) -> None:  # type: ignore[no-untyped-def]
    proj = project(user("Owner"))
    old = proj["api_key"]
    new = _rotate(bugs_db, proj["id"])
    before = counts(bugs_db), attachment_files(bugs_settings)
    boundary = "b0undary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"bug_report_id\"\r\n\r\n"
                 f"{uuid.uuid4()}\r\n--{boundary}--\r\n").encode()
    for headers in ({}, {"X-API-Key": "nope"}, {"X-API-Key": apikeys.generate_api_key()},
                    {"X-API-Key": old}):
        _envelope(client.get("/api/bugs/settings", headers=headers), 401)
        _envelope(client.post("/api/bugs/submit", headers=headers,
                              json={"title": "Crash", "api_key": old}), 401)
        _envelope(client.post("/api/session-replays", data=multipart, headers={
            **headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}), 401)
    assert (counts(bugs_db), attachment_files(bugs_settings)) == before
    assert client.get("/api/bugs/settings", headers={"X-API-Key": new}).status_code == 200


# ---- session replays ------------------------------------------------------------------------

def _form(bug_id: str | None = None, *, duration: str | None = "12", metadata: str | None = '{"a": 1}',
          file: tuple[bytes, str] | None = None) -> dict[str, Any]:
    form: dict[str, Any] = {}
    if bug_id is not None:
        form["bug_report_id"] = bug_id
    if duration is not None:
        form["duration_sec"] = duration
    if metadata is not None:
        form["metadata"] = metadata
    if file is not None:
        import io
        form["file"] = (io.BytesIO(file[0]), file[1])
    return form


@pytest.fixture()
def sdk_bug(client, key) -> str:  # type: ignore[no-untyped-def]
    resp = client.post("/api/bugs/submit", headers={"X-API-Key": key}, json={"title": "Crash"})
    return str(resp.json["data"]["id"])


@pytest.mark.parametrize(("changes", "status", "field"), [
    ({"bug_id": None}, 400, "bug_report_id"),
    ({"file": None}, 400, "file"),
    ({"file": (png_bytes(), "shot.png")}, 400, "file"),
    ({"file": (b'{"events": []}', "replay.json")}, 400, "file"),
    ({"file": (b"GIF8", "short.gif")}, 400, "file"),
    ({"metadata": "{not json"}, 400, "metadata"),
    ({"metadata": "[1, 2]"}, 400, "metadata"),
    ({"duration": "soon"}, 400, "duration_sec"),
    ({"duration": "-1"}, 400, "duration_sec"),
    ({"duration": "nan"}, 400, "duration_sec"),
])
def test_replay_refuses_bad_fields_by_name(client, key, sdk_bug, bugs_db, bugs_settings, changes, status, field) -> None:  # type: ignore[no-untyped-def]
    before = counts(bugs_db), attachment_files(bugs_settings)
    args: dict[str, Any] = {"bug_id": sdk_bug, "file": (gif_bytes(), "session-replay.gif"), **changes}
    form = _form(args.pop("bug_id"), file=args.pop("file"),
                 **{k: v for k, v in args.items()})
    resp = client.post("/api/session-replays", data=form, headers={"X-API-Key": key},
                       content_type="multipart/form-data")
    _envelope(resp, status, field)
    assert (counts(bugs_db), attachment_files(bugs_settings)) == before


def test_replay_for_another_projects_bug_or_a_bad_id_is_404(client, user, project, key, sdk_bug, bugs_db, bugs_settings) -> None:  # type: ignore[no-untyped-def]
    other_key = project(user("Rival"), name="Rival Game")["api_key"]
    before = counts(bugs_db), attachment_files(bugs_settings)
    for use_key, bug_id in ((other_key, sdk_bug), (key, str(uuid.uuid4())), (key, "not-a-uuid"),
                            (key, "1 OR 1=1")):
        resp = client.post("/api/session-replays", headers={"X-API-Key": use_key},
                           data=_form(bug_id, file=(gif_bytes(), "r.gif")),
                           content_type="multipart/form-data")
        _envelope(resp, 404)
    assert (counts(bugs_db), attachment_files(bugs_settings)) == before


def test_replay_over_the_cap_is_413(client, key, sdk_bug, bugs_db, bugs_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bugs_settings, "max_replay_bytes", 1000)
    before = counts(bugs_db), attachment_files(bugs_settings)
    resp = client.post("/api/session-replays", headers={"X-API-Key": key},
                       data=_form(sdk_bug, file=(gif_bytes(frames=30), "r.gif")),
                       content_type="multipart/form-data")
    _envelope(resp, 413, "file")
    assert (counts(bugs_db), attachment_files(bugs_settings)) == before


@pytest.mark.parametrize(("body", "content_type", "status"), [
    # truncated: no closing boundary, the file part cut off
    (b'--XyZ\r\nContent-Disposition: form-data; name="bug_report_id"\r\n\r\nabc\r\n--XyZ\r\n'
     b'Content-Disposition: form-data; name="file"; filename="r.gif"\r\nContent-Type: image/gif\r\n\r\nGIF89a',
     "multipart/form-data; boundary=XyZ", 400),
    (b"this is not multipart at all", "multipart/form-data; boundary=XyZ", 400),
    (b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XyZ--\r\n', "multipart/form-data", 400),
    (b"", "multipart/form-data; boundary=XyZ", 400),
    (b'{"bug_report_id": "x"}', "application/json", 415),
])
def test_replay_with_a_malformed_body_is_a_4xx_envelope_never_a_500(client, key, unchanged, body, content_type, status) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/session-replays", data=body,
                       headers={"X-API-Key": key, "Content-Type": content_type})
    _envelope(resp, status)


# ---- the attachment download ----------------------------------------------------------------

def test_attachments_are_only_served_to_members_of_their_project(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = user("Owner"), user("Stranger")
    proj = project(owner, name="Main Game")
    other = project(owner, name="Side Game")
    shot = client.post("/api/bugs/submit", headers={"X-API-Key": proj["api_key"]},
                       json={"title": "Crash", "screenshot": PNG_URI}).json["data"]["screenshot"]
    url = shot["url"]
    assert client.get(url, headers=owner.headers).status_code == 200
    _envelope(client.get(url), 401)
    _envelope(client.get(url, headers=stranger.headers), 404)
    # the same ids under another project of the same owner
    _envelope(client.get(url.replace(proj["slug"], other["slug"]), headers=owner.headers), 404)
    base = f"/api/projects/{proj['slug']}/bugs"
    for path in (f"{base}/{uuid.uuid4()}/attachments/{shot['id']}",
                 f"{base}/{shot['bug_id']}/attachments/{uuid.uuid4()}",
                 f"{base}/not-a-uuid/attachments/{shot['id']}",
                 f"{base}/{shot['bug_id']}/attachments/not-a-uuid"):
        _envelope(client.get(path, headers=owner.headers), 404)


# ---- failures inside the transaction ---------------------------------------------------------

def test_a_report_whose_file_cannot_be_stored_is_503_and_writes_no_rows(client, key, bugs_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the storage root should be")
    with bugs_db.session() as session:
        project = session.exec(sa.select(Project).where(  # type: ignore[call-overload]
            Project.api_key_hash == apikeys.hash_api_key(key))).scalar_one()
        before = counts(bugs_db)
        with pytest.raises(errors.ServiceUnavailable):
            service.submit_report(session=session, project=project,
                                  data=SdkReportIn.model_validate({"title": "Crash", "screenshot": PNG_URI}),
                                  storage=LocalStorage(blocker), max_screenshot_bytes=10_000_000)
    assert counts(bugs_db) == before


def test_a_report_whose_transaction_fails_leaves_no_file_behind(bugs_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The project was deleted while the report was in flight: drawing its bug number fails.
    gone = Project(id=str(uuid.uuid4()), slug="gone", name="Gone", settings={},
                   api_key_hash="0" * 64, api_key_last4="0000")
    storage = LocalStorage(tmp_path / "attachments")
    before = counts(bugs_db)
    with bugs_db.session() as session, pytest.raises(Exception):  # noqa: B017
        service.submit_report(session=session, project=gone,
                              data=SdkReportIn.model_validate({"title": "Crash", "screenshot": PNG_URI}),
                              storage=storage, max_screenshot_bytes=10_000_000)
    assert counts(bugs_db) == before
    assert not [p for p in Path(tmp_path).rglob("*") if p.is_file()]


def test_a_replay_for_a_bug_deleted_mid_upload_leaves_no_file_behind(client, key, sdk_bug, bugs_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path / "attachments")
    outcome: list[BaseException | None] = []
    with bugs_db.engine.connect() as deleter:
        # Someone deletes the bug (not yet committed) while the replay is being attached.
        deleter.execute(sa.text("DELETE FROM bugs WHERE id = :id"), {"id": sdk_bug})

        def upload() -> None:
            with bugs_db.session() as session:
                project = session.exec(sa.select(Project).where(  # type: ignore[call-overload]
                    Project.api_key_hash == apikeys.hash_api_key(key))).scalar_one()
                try:
                    service.attach_replay(session=session, project=project, bug_id=sdk_bug,
                                          duration_sec=1.0, metadata={},
                                          upload=service.replay_upload(b"[]"), filename="r.json",
                                          storage=storage)
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

        thread = threading.Thread(target=upload)
        thread.start()
        # The insert waits on the deleter's row lock: by then the file has been written.
        deadline = time.monotonic() + 10
        while not [p for p in tmp_path.rglob("*") if p.is_file()] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [p for p in tmp_path.rglob("*") if p.is_file()]
        time.sleep(0.2)
        deleter.commit()
        thread.join(10)
    assert outcome and isinstance(outcome[0], sa.exc.IntegrityError)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert counts(bugs_db)["attachments"] == 0


def test_nul_characters_and_lone_surrogates_are_cleaned_not_crashed_on(client, key, bugs_db) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/bugs/submit", headers={"X-API-Key": key}, data=(
        b'{"title": "Crash\\u0000 in menu", "description": "bad \\ud800 byte",'
        b' "reporter_name": "\\u0000"}'), content_type="application/json")
    assert resp.status_code == 201, resp.json
    bug = bug_row(bugs_db, resp.json["data"]["id"])
    assert (bug.title, bug.description, bug.reporter_name) == ("Crash in menu", "bad ? byte", None)


@pytest.mark.parametrize("metadata", ['{"fps": NaN}', '{"x": Infinity}', '{"name": "a\\u0000b"}',
                                      '{"s": "\\udc00"}'])
def test_replay_metadata_jsonb_cannot_hold_is_400(client, key, sdk_bug, unchanged, metadata) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/session-replays", headers={"X-API-Key": key},
                       data=_form(sdk_bug, metadata=metadata, file=(gif_bytes(), "r.gif")),
                       content_type="multipart/form-data")
    _envelope(resp, 400, "metadata")
