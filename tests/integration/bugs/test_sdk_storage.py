"""Attachment storage: one contract, two backends — a directory under the data dir, and an
S3-compatible server (moto's, started here on 127.0.0.1; the code under test only sees an
endpoint URL) — and the whole SDK path running on S3 by configuration."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from integration.bugs.sdk_support import png_bytes
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from bugnet_common.runtime import runtime_of
from bugs.app import create_app
from bugs.sdk.storage import AttachmentStorage, LocalStorage, MissingObject, S3Storage

ACCESS, SECRET = "bugnet-test", "bugnet-test-secret"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def bucket(s3_endpoint: str) -> str:
    name = f"attachments-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=ACCESS,
                 aws_secret_access_key=SECRET, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AttachmentStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "attachments")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Storage(bucket=request.getfixturevalue("bucket"), endpoint_url=endpoint,
                     access_key=ACCESS, secret_key=SECRET)


def test_stored_bytes_come_back_identical_and_go_away_on_delete(store: AttachmentStorage) -> None:
    data = png_bytes(300, 300, noise=True)  # several chunks when streamed
    key = f"{uuid.uuid4()}/{uuid.uuid4()}.png"
    store.put(key, data, "image/png")
    assert store.get(key) == data
    assert b"".join(store.stream(key)) == data
    store.put(key, b"replaced", "image/png")  # a second put replaces, whole
    assert store.get(key) == b"replaced"
    store.delete(key)
    with pytest.raises(MissingObject):
        store.get(key)
    with pytest.raises(MissingObject):
        store.stream(key)
    store.delete(key)  # deleting what is gone is fine


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../../b", "a//b", "", "a/b/"])
def test_keys_cannot_escape_the_store(store: AttachmentStorage, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x", "text/plain")


def test_a_misconfigured_store_fails_when_the_app_is_built(bugs_settings) -> None:  # type: ignore[no-untyped-def]
    for update in ({"attachment_storage": "s3", "s3_bucket": None}, {"attachment_storage": "ftp"}):
        with pytest.raises(ValueError):
            create_app(bugs_settings.model_copy(update={**update, "bus_in_api": False}))


def test_the_sdk_path_runs_on_s3_by_configuration(bugs_settings, bugs_db, user, s3_endpoint, bucket) -> None:  # type: ignore[no-untyped-def]
    settings = bugs_settings.model_copy(update={
        "attachment_storage": "s3", "s3_endpoint_url": s3_endpoint, "s3_bucket": bucket,
        "s3_access_key": ACCESS, "s3_secret_key": SecretStr(SECRET)})
    app = create_app(settings)
    app.testing = True
    try:
        client = app.test_client()
        owner = user("Owner")
        proj = client.post("/api/projects", json={"name": "Cloud Game"}, headers=owner.headers).json["data"]
        png = png_bytes(400, 300, noise=True)
        resp = client.post("/api/bugs/submit", headers={"X-API-Key": proj["api_key"]}, json={
            "title": "Sky is black", "screenshot": "data:image/png;base64," + base64.b64encode(png).decode()})
        assert resp.status_code == 201, resp.json
        shot = resp.json["data"]["screenshot"]
        got = client.get(shot["url"], headers=owner.headers)
        assert got.status_code == 200 and got.data == png and got.mimetype == "image/png"

        objects = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=ACCESS,
                               aws_secret_access_key=SECRET, region_name="us-east-1"
                               ).list_objects_v2(Bucket=bucket)["Contents"]
        assert [(o["Key"], o["Size"]) for o in objects] == [(f"{proj['id']}/{shot['id']}.png", len(png))]
        assert not (Path(settings.data_dir) / "attachments" / proj["id"]).exists()
    finally:
        runtime_of(app).close()
