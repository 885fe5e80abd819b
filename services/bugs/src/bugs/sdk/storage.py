"""Where attachment bytes live: a directory under the data dir, or any S3-compatible store.

The database holds an attachment's row (kind, type, size, `storage_key`); the bytes live behind
this small interface. Use cases write the bytes before they commit the row and delete them
when the transaction fails, so a committed row always has its bytes. Keys are relative
paths of URL-safe segments (`<project_id>/<attachment_id>.png`); nothing a client sends
becomes part of a key.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from flask import current_app
from flask.sansio.app import App

from ..settings import BugsSettings

CHUNK_SIZE = 256 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")


class StorageError(Exception):
    """The store failed (unreachable, full, refused)."""


class MissingObject(StorageError):
    """No object under that key."""


class AttachmentStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def stream(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks; raises MissingObject before the first chunk."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        ...


def _checked(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    """Files under a directory; a write lands whole (temp file + rename) or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())  # the row is committed next: its bytes must be durable
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise MissingObject(key) from None
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror}") from exc

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise MissingObject(key) from None
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror}") from exc
        return _chunks(handle)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete {key}: {exc.strerror}") from exc


def _chunks(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


class S3Storage:
    """Objects in one bucket of an S3-compatible store (AWS S3, MinIO, Ceph, R2, ...)."""

    def __init__(self, *, bucket: str, endpoint_url: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None,
                 region: str | None = None, prefix: str = "") -> None:
        import boto3  # imported here: processes on local storage never pay for it
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # Path-style addressing works with every S3-compatible server; virtual hosts need DNS.
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                          connect_timeout=5, read_timeout=30))

    def _key(self, key: str) -> str:
        key = _checked(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                   ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not write {key}: {exc}") from exc

    def _open(self, key: str) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                raise MissingObject(key) from None
            raise StorageError(f"could not read {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        body = self._open(key)
        with body:
            return bytes(body.read())

    def stream(self, key: str) -> Iterator[bytes]:
        body = self._open(key)

        def chunks() -> Iterator[bytes]:
            with body:
                yield from body.iter_chunks(CHUNK_SIZE)

        return chunks()

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not delete {key}: {exc}") from exc


def storage_from_settings(settings: BugsSettings) -> AttachmentStorage:
    """The store the settings name: `local` (default) or `s3`."""
    kind = settings.attachment_storage.lower()
    if kind == "local":
        return LocalStorage(Path(settings.data_dir) / "attachments")
    if kind == "s3":
        if not settings.s3_bucket:
            raise ValueError("BUGS_S3_BUCKET must be set when BUGS_ATTACHMENT_STORAGE=s3")
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        return S3Storage(bucket=settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
                         access_key=settings.s3_access_key, secret_key=secret)
    raise ValueError(f"unknown attachment storage {settings.attachment_storage!r}; "
                     "use 'local' or 's3'")


_EXTENSION = "bugs.attachment_storage"


def init_app(app: App) -> None:
    """Build the app's store when the app is built, so a misconfiguration fails at start-up
    rather than on the first upload."""
    app.extensions[_EXTENSION] = storage_from_settings(app.extensions["bugnet.settings"])


def storage() -> AttachmentStorage:
    """The current app's store."""
    return current_app.extensions[_EXTENSION]  # type: ignore[no-any-return]
