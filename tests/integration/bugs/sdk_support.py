"""Helpers of the SDK tests: real image bytes, the requests shipped SDKs put on the wire, and
counts of what a request left behind (rows, outbox events, attachment files)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib import request as urllib_request
from urllib.error import HTTPError

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import make_server

from bugnet_common.db import Database
from bugs.models import BUS, Activity, Attachment, Bug, Occurrence
from bugs.settings import BugsSettings

GODOT_VERSION = "4.3.stable"


# ---- image bytes ----------------------------------------------------------------------------

def png_bytes(width: int = 4, height: int = 3, *, noise: bool = False) -> bytes:
    """A real PNG (RGB, 8 bit). `noise` makes it incompressible, for several-MB screenshots."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = width * 3
    pixels = os.urandom(row * height) if noise else bytes(range(256)) * (row * height // 256 + 1)
    raw = b"".join(b"\x00" + pixels[y * row:(y + 1) * row] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def jpeg_bytes() -> bytes:
    """The start and end markers of a JFIF file around some scan bytes."""
    return (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            + os.urandom(512) + b"\xff\xd9")


def gif_bytes(frames: int = 3, width: int = 8, height: int = 6) -> bytes:
    """A GIF89a laid out the way the Godot SDK's encoder writes session replays."""
    out = bytearray(b"GIF89a" + struct.pack("<HH", width, height) + bytes([0xF6, 0, 0]))
    for i in range(128):
        out += bytes([((i >> 4) & 7) * 36, ((i >> 1) & 7) * 36, (i & 1) * 255])
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for f in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"
        out += b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00\x07"
        pixels = bytes((f * 7 + p) % 128 for p in range(width * height))
        for pos in range(0, len(pixels), 254):
            block = pixels[pos:pos + 254]
            out += bytes([len(block) + 1, 0x80]) + block
        out += b"\x01\x81\x00"
    out += b"\x3b"
    return bytes(out)


# ---- the wire: Godot's HTTPClient and the Pygame SDK's urllib --------------------------------

def godot_json(payload: dict[str, Any]) -> bytes:
    """JSON.stringify(payload) of Godot 4: keys sorted, no spaces, UTF-8, '/' unescaped."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def godot_request(method: str, url_path: str, headers: list[str], body: bytes, *,
                  port: int) -> bytes:
    """The bytes Godot 4's HTTPRequest/HTTPClient write: the SDK's headers, then the ones the
    engine adds (Accept-Encoding from HTTPRequest; Host, Content-Length, User-Agent, Accept)."""
    lines = [f"{method} {url_path} HTTP/1.1", *headers, "Accept-Encoding: gzip, deflate",
             f"Host: 127.0.0.1:{port}"]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"User-Agent: GodotEngine/{GODOT_VERSION} (Linux)", "Accept: */*"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def send_raw(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Write `raw` to the server as is; the status, headers and body it answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def godot_multipart(boundary: str, bug_report_id: str, duration_sec: int, metadata: str,
                    gif: bytes) -> bytes:
    """The session-replay body the Godot SDK assembles by hand."""
    body = bytearray()
    body += f"--{boundary}\r\n".encode()
    body += b'Content-Disposition: form-data; name="bug_report_id"\r\n\r\n'
    body += f"{bug_report_id}\r\n".encode()
    body += f"--{boundary}\r\n".encode()
    body += b'Content-Disposition: form-data; name="duration_sec"\r\n\r\n'
    body += f"{duration_sec}\r\n".encode()
    body += f"--{boundary}\r\n".encode()
    body += b'Content-Disposition: form-data; name="metadata"\r\n\r\n'
    body += f"{metadata}\r\n".encode()
    body += f"--{boundary}\r\n".encode()
    body += b'Content-Disposition: form-data; name="file"; filename="session-replay.gif"\r\n'
    body += b"Content-Type: image/gif\r\n\r\n"
    body += gif
    body += f"\r\n--{boundary}--\r\n".encode()
    return bytes(body)


def pygame_multipart(boundary: str, bug_report_id: str, duration_sec: int, metadata: str,
                     events_json: bytes) -> bytes:
    """The session-replay body the Pygame SDK assembles by hand (a JSON event list)."""
    body = b""
    body += ("--" + boundary + "\r\n").encode()
    body += b'Content-Disposition: form-data; name="bug_report_id"\r\n\r\n'
    body += (bug_report_id + "\r\n").encode()
    body += ("--" + boundary + "\r\n").encode()
    body += b'Content-Disposition: form-data; name="duration_sec"\r\n\r\n'
    body += (str(duration_sec) + "\r\n").encode()
    body += ("--" + boundary + "\r\n").encode()
    body += b'Content-Disposition: form-data; name="metadata"\r\n\r\n'
    body += (metadata + "\r\n").encode()
    body += ("--" + boundary + "\r\n").encode()
    body += b'Content-Disposition: form-data; name="file"; filename="session-replay.json"\r\n'
    body += b"Content-Type: application/json\r\n\r\n"
    body += events_json
    body += b"\r\n"
    body += ("--" + boundary + "--\r\n").encode()
    return body


def pygame_http(server_url: str, api_key: str, method: str, path: str,
                body: dict[str, Any] | bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """The Pygame SDK's `_http_request`, line for line: urllib, X-API-Key, json.dumps bodies."""
    hdrs = {"X-API-Key": api_key}
    if headers:
        hdrs.update(headers)
    data = None
    if body is not None:
        if isinstance(body, dict):
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        else:
            data = body
    req = urllib_request.Request(server_url + path, data=data, headers=hdrs, method=method)
    try:
        with urllib_request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read().decode("utf-8"))
    except HTTPError as exc:
        return exc.code, json.loads(exc.read().decode("utf-8"))


@pytest.fixture(scope="session")
def live_bugs(bugs_app: Flask) -> Iterator[int]:
    """The bugs api on a real HTTP port (127.0.0.1), for requests written byte by byte."""
    server = make_server("127.0.0.1", 0, bugs_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="bugs-live", daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join(10)


# ---- what a request left behind -------------------------------------------------------------

TABLES = {"bugs": Bug, "occurrences": Occurrence, "attachments": Attachment,
          "activity": Activity}


def counts(db: Database) -> dict[str, int]:
    """Rows in the tables a report writes, and outbox events."""
    with db.engine.connect() as conn:
        out = {name: conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()  # type: ignore[arg-type]
               for name, model in TABLES.items()}
        out["outbox"] = conn.execute(sa.select(sa.func.count()).select_from(BUS.outbox)).scalar_one()
    return out


def attachment_files(settings: BugsSettings) -> set[Path]:
    root = Path(settings.data_dir) / "attachments"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def outbox(db: Database, subject: str | None = None) -> list[dict[str, Any]]:
    """Outbox events in order (the envelope's `data`, plus `subject`)."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.subject, BUS.outbox.c.payload)
                            .order_by(BUS.outbox.c.seq)).all()
    events = [{"subject": s, **json.loads(p)["data"]} for s, p in rows]
    return [e for e in events if subject is None or e["subject"] == subject]


def bug_row(db: Database, bug_id: str) -> Bug:
    with db.session() as session:
        bug = session.get(Bug, bug_id)
        assert bug is not None
        return bug
