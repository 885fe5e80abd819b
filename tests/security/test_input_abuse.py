"""Input abuse through the gateway (issue 7): bodies too large, too deep, not UTF-8, of the
wrong type, lying about their length; JSON numbers Python cannot hold; image bombs; and a
long schemathesis run (positive and negative data) over every documented operation.

Every refusal must be a 4xx in the API's envelope, never a 5xx or a hang. Limits (Envoy's
body caps: 1 MiB by default, 20 MiB on SDK uploads; JSON nesting: 100 levels; 15 MiB per
screenshot or replay) are the contract the tests hold the stack to.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import schemathesis
from e2e.support import assert_envelope_error, auth, signup
from fuzzing import SCHEMA, addresses, assert_envelope, check_case, fuzz_world
from hypothesis import HealthCheck, Phase, settings

from bugnet_common.untrusted import MAX_JSON_DEPTH
from bugnet_stack import Stack

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
# 127.0.240.x: this module's own clients (no other test's clients use the range)
_hosts = (f"127.0.240.{n % 250 + 2}" for n in itertools.count())
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[dict[str, Any]]:
    """An owner, a project, its API key and one bug, made once for the module."""
    api = client(stack)
    token, _, _ = signup(api)
    created = api.post("/projects", json={"name": "Abused Game"}, headers=auth(token))
    assert created.status_code == 201, created.text
    project = created.json()["data"]
    bug = api.post(f"/projects/{project['slug']}/bugs", headers=auth(token),
                   json={"title": "Target", "description": "d", "category": "gameplay"})
    assert bug.status_code == 201, bug.text
    yield {"token": token, "slug": project["slug"], "key": project["api_key"],
           "bug": bug.json()["data"]["id"]}
    api.close()


def client(stack: Stack) -> httpx.Client:
    """A client on a fresh source address (fresh rate-limit buckets)."""
    return httpx.Client(base_url=stack.urls.gateway + "/api", timeout=60,
                        transport=httpx.HTTPTransport(local_address=next(_hosts)))


@pytest.fixture()
def fresh(stack: Stack) -> Iterator[Callable[[], httpx.Client]]:
    made: list[httpx.Client] = []

    def make() -> httpx.Client:
        made.append(client(stack))
        return made[-1]

    yield make
    for c in made:
        c.close()


def refused(resp: httpx.Response, status: int, *, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = assert_envelope_error(resp, status)
    if message is not None:
        assert message in body["error"], body
    return body


def logged_request_ids(stack: Stack, service: str) -> set[str]:
    ids = set()
    for raw in stack.log_files()[f"{service}-api"].read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                ids.add(str(json.loads(raw).get("request_id")))
            except ValueError:
                continue
    return ids


# ---- size --------------------------------------------------------------------------------

def test_oversized_bodies_are_refused_by_envoy_before_any_service_sees_them(
        stack: Stack, world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    owner, key = auth(world["token"]), {"X-API-Key": world["key"]}
    rid = {name: f"abuse-{name}-{uuid.uuid4().hex}" for name in
           ("default", "chunked", "submit", "replay", "whitespace")}

    over_default = b'{"name": "' + b"x" * MIB + b'"}'
    refused(fresh().post("/projects", content=over_default,
                         headers={**owner, **JSON, "X-Request-Id": rid["default"]}),
            413, message="limit 1 MB")
    # no Content-Length to refuse up front: Envoy counts the chunks as they come
    refused(fresh().post("/projects", content=iter([over_default[i:i + 65536] for i in
                                                   range(0, len(over_default), 65536)]),
                         headers={**owner, **JSON, "X-Request-Id": rid["chunked"]}),
            413, message="limit 1 MB")
    refused(fresh().post("/projects", content=b" " * (MIB + 1),
                         headers={**owner, **JSON, "X-Request-Id": rid["whitespace"]}),
            413, message="limit 1 MB")
    over_sdk = b"x" * (20 * MIB + 1)
    refused(fresh().post("/bugs/submit", content=over_sdk,
                         headers={**key, **JSON, "X-Request-Id": rid["submit"]}),
            413, message="limit 20 MB")
    refused(fresh().post("/session-replays", data={"bug_report_id": world["bug"]},
                         files={"file": ("replay.gif", b"GIF89a" + over_sdk)},
                         headers={**key, "X-Request-Id": rid["replay"]}),
            413, message="limit 20 MB")
    time.sleep(1.5)  # the services' log lines are flushed line by line; give them a moment
    seen = logged_request_ids(stack, "bugs")
    assert not seen & set(rid.values()), "a service saw a body Envoy should have stopped"


def test_uploads_beyond_their_own_cap_are_413_from_the_service(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    key = {"X-API-Key": world["key"]}
    body = refused(fresh().post("/session-replays", data={"bug_report_id": world["bug"]},
                                files={"file": ("replay.gif", b"GIF89a" + bytes(16 * MIB))},
                                headers=key), 413)
    assert "file" in body.get("details", {}), body
    # a screenshot over its 15 MiB cap cannot fit in the 20 MiB body once base64-encoded:
    # Envoy or the service refuses it, with a 413 in the envelope either way
    shot = "data:image/png;base64," + base64.b64encode(PNG_SIGNATURE + bytes(15 * MIB)).decode()
    refused(fresh().post("/bugs/submit", headers=key,
                         json={"title": "Huge screenshot", "description": "d",
                               "screenshot": shot}), 413)


def test_a_body_of_only_whitespace_is_a_400(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    refused(fresh().post("/projects", content=b" \n\t\r" * (MIB // 4 - 64),
                         headers={**auth(world["token"]), **JSON}), 400)


def test_long_urls_and_headers_get_the_envelope_from_every_service(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    """Under Envoy's 60 KiB cap a long query string or header reaches the service and is
    served (gunicorn's own 4 KiB / 8 KiB caps answered in HTML); over it, Envoy's 431."""
    owner = auth(world["token"])
    paths = ("/notifications", "/auth/me", f"/projects/{world['slug']}/webhooks",
             f"/projects/{world['slug']}/bugs", f"/projects/{world['slug']}/analytics/crashes")
    for path in paths:  # integrations, auth, integrations, bugs, analytics
        for query, header in ((20_000, 0), (0, 20_000)):
            resp = fresh().get(path, params={"x": "a" * query} if query else None,
                               headers={**owner, **({"X-Long": "b" * header} if header else {})})
            assert resp.status_code == 200, f"{path} {query} {header}: {resp.text[:200]}"
            assert_envelope(resp)
        refused(fresh().get(path, params={"x": "a" * 61_500}, headers=owner), 431)


# ---- nesting -----------------------------------------------------------------------------

def nested(depth: int, leaf: bytes = b"") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def test_deeply_nested_json_is_a_400_at_every_kind_of_parse_site(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    owner, key = auth(world["token"]), {"X-API-Key": world["key"]}
    bomb = nested(200_000)  # 400 KB; Python's parser alone gives up at ~1000 levels
    assert len(bomb) < MIB
    bug = f"/projects/{world['slug']}/bugs/{world['bug']}"
    sites: list[tuple[str, str, dict[str, str], bytes]] = [
        ("POST", "/projects", owner, bomb),                              # web.json_body
        ("PATCH", bug, owner, b'{"title": ' + bomb + b"}"),
        ("POST", "/auth/login", {}, bomb),                               # auth service
        ("POST", "/bugs/submit", key, bomb),                             # SDK submit
        ("POST", "/bugs/submit", {}, b'{"title": ' + bomb + b"}"),       # key looked up in it
        ("POST", "/sessions/start", {}, bomb),                           # analytics fast path
        ("POST", "/perf/snapshot", key, bomb),
        ("POST", f"/projects/{world['slug']}/webhooks", owner, bomb),   # integrations
    ]
    for method, path, headers, content in sites:
        resp = fresh().request(method, path, content=content, headers={**headers, **JSON})
        assert 400 <= resp.status_code < 500, f"{method} {path}: {resp.status_code} {resp.text}"
        assert_envelope(resp)

    # the limit itself: 100 levels pass, 101 do not (in a field the submit ignores)
    def submit(depth: int) -> httpx.Response:
        return fresh().post("/bugs/submit", headers={**key, **JSON}, content=(
            b'{"title": "Nested", "description": "d", "extra": '
            + nested(depth - 1) + b"}"))
    assert submit(MAX_JSON_DEPTH).status_code == 201
    refused(submit(MAX_JSON_DEPTH + 1), 400, message="nested too deeply")

    # JSON carried as text inside a form or a field
    deep_text = nested(50_000).decode()
    form = {"bug_report_id": world["bug"]}
    refused(fresh().post("/session-replays", headers=key, data={**form, "metadata": deep_text},
                         files={"file": ("r.json", b"[]")}), 400)
    refused(fresh().post("/session-replays", headers=key, data=form,
                         files={"file": ("r.json", nested(50_000))}), 400)
    refused(fresh().post("/perf/snapshot", headers=key, json={
        **PERF, "custom_metrics": '{"a": ' + deep_text + "}"}), 400)


def test_a_token_whose_header_is_not_a_json_object_is_a_401(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    for header in (b"[]", b'"kid"', nested(5000), b"\xff\xfe"):
        head = base64.urlsafe_b64encode(header).decode().rstrip("=")
        refused(fresh().get("/projects", headers=auth(f"{head}.e30.c2ln")), 401)


# ---- encoding and content types ----------------------------------------------------------

def test_invalid_utf8_is_refused_in_bodies_and_query_strings_and_harmless_in_headers(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    owner, key = auth(world["token"]), {"X-API-Key": world["key"]}
    refused(fresh().post("/projects", content=b'{"name": "\xff\xfe game"}',
                         headers={**owner, **JSON}), 400, message="Malformed JSON")
    refused(fresh().post("/bugs/submit", content=b'{"title": "\xc0\xaf", "description": "d"}',
                         headers={**key, **JSON}), 400, message="Malformed JSON")
    # UTF-8-encoded surrogates (json.loads would let them through from bytes)
    refused(fresh().post("/sessions/start", content=b'{"session_token": "\xed\xa0\x80"}',
                         headers={**key, **JSON}), 400, message="Malformed JSON")
    refused(fresh().post("/projects", content=b'{"name": "Game", "x": {"\xed\xb0\x80": 1}}',
                         headers={**owner, **JSON}), 400, message="Malformed JSON")
    # ...except in an SDK report, which is cleaned rather than refused (spec 8)
    resp = fresh().post("/bugs/submit", content=b'{"title": "Crash \xed\xa0\x80", '
                        b'"description": "d"}', headers={**key, **JSON})
    assert resp.status_code == 201 and "\ud800" not in resp.json()["data"]["title"], resp.text
    for query in ("search=%ff%fe", "q=%C0%AF", "status=open&label=%ed%a0%80"):
        refused(fresh().get(f"/projects/{world['slug']}/bugs?{query}", headers=owner), 400,
                message="not valid UTF-8")
    refused(fresh().get(f"/projects/{world['slug']}/analytics/crashes?days=%ff",
                        headers=owner), 400, message="not valid UTF-8")
    # credentials that are not UTF-8 are no credentials: 401
    refused(fresh().get("/projects", headers={b"Authorization": b"Bearer \xff\xfe.a.b"}), 401)
    refused(fresh().get("/bugs/settings", headers={b"X-API-Key": b"bn_\xff\xfe\xfd"}), 401)
    # a header the API only reads for tracing: no harm done (the services log a request id
    # of their own for it; Envoy echoes the client's bytes back to that client only)
    resp = fresh().get("/projects", headers={
        b"Authorization": owner["Authorization"].encode(), b"X-Request-Id": b"\xff\xfe-request-id"})
    assert resp.status_code == 200, resp.text


def test_wrong_or_missing_content_types(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    owner, key = auth(world["token"]), {"X-API-Key": world["key"]}
    body = json.dumps({"name": "Typed"}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml",
                  "multipart/form-data; boundary=x"):
        refused(fresh().post("/projects", content=body,
                             headers={**owner, "content-type": ctype}), 415)
        refused(fresh().post("/bugs/submit", content=b'{"title": "t"}',
                             headers={**key, "content-type": ctype}), 415)
        refused(fresh().post("/perf/snapshot", content=json.dumps(PERF).encode(),
                             headers={**key, "content-type": ctype}), 415)
    refused(fresh().post("/session-replays", json={"bug_report_id": world["bug"]},
                         headers=key), 415)
    # no Content-Type at all: the body is read as JSON (game SDKs omit it)
    resp = fresh().post("/projects", content=body, headers=owner)
    assert resp.status_code == 201 and resp.json()["data"]["name"] == "Typed", resp.text
    # a parameter on the right type is fine
    resp = fresh().post("/projects", content=json.dumps({"name": "Charset"}).encode(),
                        headers={**owner, "content-type": "application/json; charset=utf-8"})
    assert resp.status_code == 201, resp.text


# ---- numbers and keys --------------------------------------------------------------------

PERF = {"fps": 60, "frame_time_ms": 16.6, "memory_used_mb": 512}


def test_json_numbers_python_cannot_hold_are_400s(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    owner, key = auth(world["token"]), {"X-API-Key": world["key"]}
    huge = b"9" * 5000  # beyond Python's 4300-digit int conversion limit
    refused(fresh().post("/projects", content=b'{"name": "Big", "x": ' + huge + b"}",
                         headers={**owner, **JSON}), 400)
    refused(fresh().post("/perf/snapshot", headers={**key, **JSON},
                         content=b'{"fps": ' + huge + b', "frame_time_ms": 1, '
                                 b'"memory_used_mb": 1}'), 400)
    for literal in (b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity"):
        refused(fresh().post("/perf/snapshot", headers={**key, **JSON},
                             content=b'{"fps": ' + literal + b', "frame_time_ms": 1, '
                                     b'"memory_used_mb": 1}'), 400)
        refused(fresh().post("/perf/snapshot", headers={**key, **JSON}, content=(
            b'{"fps": 60, "frame_time_ms": 1, "memory_used_mb": 1, "custom_metrics": {"m": '
            + literal + b"}}")), 400)
    for query in (f"limit={'9' * 5000}", f"page={'9' * 5000}", "page=1e400", "limit=-0"):
        refused(fresh().get(f"/projects/{world['slug']}/bugs?{query}", headers=owner), 400)
    # -0 and a zero exponent are ordinary numbers
    resp = fresh().post("/perf/snapshot", headers={**key, **JSON},
                        content=b'{"fps": -0, "frame_time_ms": 0e0, "memory_used_mb": -0.0}')
    assert resp.status_code == 201, resp.text


def test_duplicate_keys_take_the_last_value(
        world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    resp = fresh().post("/projects", content=b'{"name": "First", "name": "Last"}',
                        headers={**auth(world["token"]), **JSON})
    assert resp.status_code == 201 and resp.json()["data"]["name"] == "Last", resp.text


# ---- lying framing -----------------------------------------------------------------------

def raw_exchange(stack: Stack, data: bytes, *, half_close: bool, wait: float) -> bytes:
    """Send raw bytes to the gateway and read what comes back until it closes or `wait`."""
    host, port = stack.urls.gateway.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait,
                                  source_address=(next(_hosts), 0)) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and _complete(out):
                break
    return out


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return match is not None and len(body) >= int(match.group(1))


def _status_and_body(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    assert match is not None, head
    return status, json.loads(body[:int(match.group(1))])


def test_content_length_lies_and_smuggling_shapes_get_a_clean_400_or_a_close(
        stack: Stack) -> None:
    login = b"POST /api/auth/login HTTP/1.1\r\nHost: bugnet\r\nContent-Type: application/json\r\n"
    body = b'{"email": "a@example.com", "password": "x"}'
    # shorter than the body: the request is the prefix (malformed JSON), answered at once
    out = raw_exchange(stack, login + b"Content-Length: 5\r\n\r\n" + body,
                       half_close=False, wait=10)
    status, doc = _status_and_body(out)
    assert status == 400 and doc["ok"] is False and "Malformed JSON" in doc["error"], out
    # longer than the body, then the client stops sending: the connection is closed at once
    # (no request reaches a service; nothing waits)
    started = time.monotonic()
    out = raw_exchange(stack, login + b"Content-Length: 500\r\n\r\n" + body,
                       half_close=True, wait=10)
    assert time.monotonic() - started < 5
    assert out == b"" or _status_and_body(out)[0] == 400, out
    # framing that request smuggling relies on: refused by Envoy with the envelope
    for framing in (b"Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"2c\r\n" + body + b"\r\n0\r\n\r\n",
                    b"Content-Length: 44\r\nContent-Length: 45\r\n\r\n" + body,
                    b"Content-Length: -1\r\n\r\n" + body,
                    b"Content-Length: 4x\r\n\r\n" + body):
        out = raw_exchange(stack, login + framing, half_close=False, wait=10)
        status, doc = _status_and_body(out)
        assert status == 400 and doc["ok"] is False and doc["error"], out


# ---- image bombs -------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def decompression_bomb(megabytes: int) -> bytes:
    """A zlib stream (valid, checksum included) that inflates to `megabytes` MiB of zero
    pixels from about a thousandth of that: one fully flushed deflate block of 1 MiB of
    zeros, repeated (the adler32 of n zeros is (n mod 65521) << 16 | 1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(bytes(MIB)) + packer.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    checksum = ((megabytes * MIB % 65521) << 16) | 1
    return b"\x78\xda" + block * megabytes + last + struct.pack(">I", checksum)


def gif(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + image + b"\x08\x02\x4c\x01\x00" + b"\x3b"


def api_rss(stack: Stack, service: str) -> int:
    """Resident memory of a service's api: the gunicorn master and its workers."""
    [proc] = [p for p in stack.status() if p.name == f"{service}-api"]
    root = psutil.Process(proc.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def test_no_service_decodes_image_pixels() -> None:
    decoders = re.compile(r"^\s*(import|from)\s+(PIL|imageio|cv2|wand|pyvips|skimage)\b", re.M)
    sources = [*REPO.glob("services/*/src/**/*.py"), *REPO.glob("libs/*/src/**/*.py"),
               *REPO.glob("gateway/src/**/*.py")]
    assert sources
    users = [str(p.relative_to(REPO)) for p in sources if decoders.search(p.read_text())]
    assert users == [], f"an image decoder is used: {users} (check its bomb limits)"


def test_image_bombs_are_stored_as_opaque_bytes_without_memory_growth(
        stack: Stack, world: dict[str, Any], fresh: Callable[[], httpx.Client]) -> None:
    owner, key = auth(world["token"]), {"X-API-Key": world["key"]}
    bombs = {
        "declared 50000x50000 png": png(50_000, 50_000, zlib.compress(bytes(1024))),
        "inflates to 2 GiB png": png(50_000, 50_000, decompression_bomb(2048)),
    }
    before = api_rss(stack, "bugs")
    for name, image in bombs.items():
        shot = "data:image/png;base64," + base64.b64encode(image).decode()
        resp = fresh().post("/bugs/submit", headers=key, json={
            "title": f"Bomb {name}", "description": "d", "screenshot": shot})
        assert resp.status_code == 201, f"{name}: {resp.text}"
        stored = resp.json()["data"]["screenshot"]
        bug_id = resp.json()["data"]["id"]
        got = fresh().get(f"/projects/{world['slug']}/bugs/{bug_id}/attachments/{stored['id']}",
                          headers=owner)
        assert got.status_code == 200 and got.content == image, name
    for name, replay in {"declared 50000x50000 gif": gif(50_000, 50_000)}.items():
        resp = fresh().post("/session-replays", headers=key,
                            data={"bug_report_id": world["bug"]},
                            files={"file": ("replay.gif", replay)})
        assert resp.status_code == 201, f"{name}: {resp.text}"
        got = fresh().get(f"/projects/{world['slug']}/bugs/{world['bug']}/attachments/"
                          f"{resp.json()['data']['id']}", headers=owner)
        assert got.status_code == 200 and got.content == replay, name
    after = api_rss(stack, "bugs")
    grown = after - before
    print(f"\nbugs api RSS around the image bombs: {before / MIB:.0f} -> {after / MIB:.0f} MiB")
    assert grown < 50 * MIB, f"the bugs api grew by {grown / MIB:.0f} MiB"


# ---- the long fuzz -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz(stack: Stack) -> Iterator[dict[str, Any]]:
    # 127.0.241.x-242.x: 400 source addresses, so even at full speed no address goes over a
    # per-minute limit (a 429 is fine, but would hide what the handler does)
    with fuzz_world(stack, setup_address="127.0.240.1", source_addresses=addresses(241, 400),
                    label="long schemathesis run through the gateway") as w:
        yield w


@pytest.mark.heavy
@SCHEMA.exclude(tag="Documentation").parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_long_fuzz_positive_and_negative_data_no_5xx_always_the_envelope(
        case: schemathesis.Case, fuzz: dict[str, Any]) -> None:
    check_case(case, fuzz)
