"""JWT signing keys, tokens and the JWKS.

Keys live in the auth database so every api process signs with the same one; the newest
unretired key signs, every unretired key stays in the JWKS so rotation never cuts off
tokens already issued.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlmodel import select

from bugnet_common.db import Database

from .models import SigningKey

ALGORITHM = "ES256"
_KEYGEN_LOCK_ID = 0x6275676E  # pg advisory lock: one process generates the first key


class KeyStore:
    def __init__(self, db: Database, *, issuer: str, audience: str, refresh_seconds: float = 60) -> None:
        self.db = db
        self.issuer = issuer
        self.audience = audience
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._signing: ECKey | None = None
        self._public: KeySet | None = None
        self._jwks: dict[str, Any] = {"keys": []}

    def _load(self) -> None:
        with self.db.begin() as session:
            rows = session.exec(select(SigningKey).where(SigningKey.retired_at.is_(None))  # type: ignore[union-attr]
                                .order_by(SigningKey.created_at.desc())).all()  # type: ignore[attr-defined]
            if not rows:
                session.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _KEYGEN_LOCK_ID})
                rows = session.exec(select(SigningKey).where(SigningKey.retired_at.is_(None))).all()  # type: ignore[union-attr]
                if not rows:
                    rows = [self._generate(session)]
        newest = rows[0]
        self._signing = ECKey.import_key(newest.private_pem, {"kid": newest.kid})
        public = [dict(r.public_jwk) for r in rows]
        self._public = KeySet.import_key_set({"keys": public})
        self._jwks = {"keys": public}
        self._loaded_at = time.monotonic()

    @staticmethod
    def _generate(session: Any) -> SigningKey:
        kid = uuid.uuid4().hex
        key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
        jwk = key.as_dict(private=False)
        jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
        row = SigningKey(kid=kid, algorithm=ALGORITHM,
                         private_pem=key.as_pem(private=True).decode(), public_jwk=jwk)
        session.add(row)
        session.flush()
        return row

    def _fresh(self) -> None:
        with self._lock:
            if self._signing is None or time.monotonic() - self._loaded_at > self.refresh_seconds:
                self._load()

    def jwks(self) -> dict[str, Any]:
        self._fresh()
        return self._jwks

    def verification_keys(self, kid: str | None) -> KeySet:
        self._fresh()
        assert self._public is not None
        if kid is not None and kid not in {k.get("kid") for k in self._jwks["keys"]}:
            with self._lock:
                self._load()  # a key another process just created
        return self._public

    def issue(self, *, user_id: str, email: str, session_id: str, issued_at: int,
              expires_at: int) -> str:
        self._fresh()
        assert self._signing is not None
        claims = {"iss": self.issuer, "aud": self.audience, "sub": user_id, "email": email,
                  "sid": session_id, "iat": issued_at, "exp": expires_at}
        header = {"alg": ALGORITHM, "kid": self._signing.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self._signing, algorithms=[ALGORITHM])
