"""HTTP routes of the sdk area: what game clients call with the project's API key (spec §5,
§8), and the attachment download members use."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException

from bugnet_common import errors, openapi, untrusted, web

from .. import access
from .. import context as ctx
from . import ingest, service
from .schemas import ReplayForm, SdkReportIn
from .service import ClientSettingsOut, StoredAttachmentOut, SubmittedReportOut
from .storage import init_app, storage

bp = Blueprint("sdk", __name__, url_prefix="/api")
bp.record_once(lambda state: init_app(state.app))
bp.record_once(lambda state: state.app.extensions.setdefault(
    _INGESTOR, ingest.Ingestor(writers=state.app.extensions["bugnet.settings"].ingest_writers)))

_INGESTOR = "bugs.sdk_ingestor"


def ingestor() -> ingest.Ingestor:
    """The current app's batch writer of plain reports."""
    return current_app.extensions[_INGESTOR]  # type: ignore[no-any-return]


@bp.get("/bugs/settings")
@openapi.operation("Get the SDK settings", tag="SDK", response=ClientSettingsOut, auth="api_key",
                   description="What a game client asks at start-up: which captures the studio "
                               "switched on. The project is the one of the API key.")
def client_settings() -> ResponseReturnValue:
    return web.ok(service.client_settings(ctx.sdk_project()))


@bp.post("/bugs/submit")
@openapi.operation(
    "Submit a bug report", tag="SDK", body=SdkReportIn, response=SubmittedReportOut,
    status=201, auth="api_key",
    description="What game clients send. `steps_to_reproduce` and `steps` are one field; an "
                "empty string in an optional field means not given. `screenshot` is a "
                "`data:image/png;base64,...` URI (or bare base64), stored as an attachment. A "
                "crash (category `crash` or a title beginning `[Error]`) with the fingerprint "
                "of an existing bug adds an occurrence to it and answers that bug's `id`; a "
                "fixed bug hit from a newer `game_version` is reopened as a regression.")
def submit_report() -> ResponseReturnValue:
    key_hash = access.api_key_hash(ctx.sdk_key())  # 401 for a missing or malformed key
    try:
        data = web.json_body(SdkReportIn, keep_unstorable=True)  # cleaned by SdkReportIn
    except (errors.ApiError, HTTPException):
        ctx.sdk_project()  # an unknown key is a 401 before any complaint about the body
        raise
    if ingest.eligible(data):
        # Reports without a screenshot are written in batches with other requests' (ingest.py).
        return web.created(ingestor().submit(ctx.rt().db, key_hash, data.bug_in()))
    project = ctx.sdk_project()
    result = service.submit_report(session=ctx.session(), project=project, data=data,
                                   storage=storage(),
                                   max_screenshot_bytes=ctx.settings().max_screenshot_bytes)
    return web.created(service.submitted_out(result, project))


@bp.post("/session-replays")
@openapi.operation("Upload a session replay", tag="SDK", form=ReplayForm,
                   response=StoredAttachmentOut, status=201, auth="api_key",
                   description="Attaches a replay (a GIF or a JSON event list) to a bug of the "
                               "key's project.")
def upload_replay() -> ResponseReturnValue:
    project = ctx.sdk_project()
    form, upload = _replay_form(ctx.settings().max_replay_bytes)
    attachment = service.attach_replay(
        session=ctx.session(), project=project, bug_id=form["bug_report_id"],
        duration_sec=service.parse_duration(form.get("duration_sec")),
        metadata=service.parse_metadata(form.get("metadata")),
        upload=service.replay_upload(upload[0]), filename=upload[1], storage=storage())
    return web.created(service.attachment_out(attachment, project))


def _replay_form(max_bytes: int) -> tuple[dict[str, str], tuple[bytes, str | None]]:
    """The multipart fields and the file's bytes and name; 400/413/415 on a bad body."""
    if request.mimetype != "multipart/form-data":
        raise errors.UnsupportedMediaType("Send the replay as multipart/form-data")
    # werkzeug parses leniently: a body it cannot read yields no fields at all.
    form, files = request.form, request.files
    if not form and not files:
        raise errors.BadRequest("Malformed or empty multipart body")
    untrusted.reject_nul(form)
    fields = {name: form[name] for name in ("bug_report_id", "duration_sec", "metadata")
              if name in form}
    if not fields.get("bug_report_id", "").strip():
        raise errors.ValidationFailed("Invalid 'bug_report_id': is required",
                                      details={"bug_report_id": "is required"})
    file: FileStorage | None = files.get("file")
    if file is not None:
        data = file.stream.read(max_bytes + 1)
        name = file.filename
    elif "file" in form:  # sent as a plain field, without a filename
        data, name = form["file"].encode(), None
    else:
        raise errors.ValidationFailed("Invalid 'file': is required", details={"file": "is required"})
    if len(data) > max_bytes:
        raise errors.PayloadTooLarge(f"'file' is larger than the {max_bytes}-byte limit",
                                     details={"file": f"must be at most {max_bytes} bytes"})
    return fields, (data, name)


@bp.get("/projects/<slug>/bugs/<bug_id>/attachments/<attachment_id>")
@openapi.operation("Download an attachment", tag="Bugs", response=bytes, envelope=False,
                   media_type="application/octet-stream",
                   description="Needs `bugs.view`. The attachment's bytes as stored (a "
                               "screenshot or a replay), with its own `Content-Type`, not the "
                               "JSON envelope.")
def download_attachment(slug: str, bug_id: str, attachment_id: str) -> ResponseReturnValue:
    access = ctx.access(slug, "bugs.view")
    attachment, chunks = service.open_attachment(
        session=ctx.session(), project=access.project, bug_id=bug_id,
        attachment_id=attachment_id, storage=storage())
    resp = Response(chunks, mimetype=attachment.content_type, direct_passthrough=True)
    resp.content_length = attachment.size
    filename = attachment.filename or f"{attachment.kind}-{attachment.id}"
    resp.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # Player-made bytes: never let a browser sniff them into something executable.
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp
