"""Bearer-token verification as every service does it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bugnet_common.auth import JwtVerifier
from bugnet_common.bus.client import RevocationSet
from bugnet_common.errors import Unauthorized

KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
OTHER = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"iss": "bugnet", "aud": "bugnet", "sub": "u1", "sid": "s1",
                               "email": "a@b.c", "iat": now, "exp": now + 600}
    base.update(over)
    return base


def sign(key: ECKey = KEY, kid: str = "k1", **over: object) -> str:
    return jwt.encode({"alg": "ES256", "kid": kid}, claims(**over), key, algorithms=["ES256"])


def verifier(revoked: RevocationSet | None = None) -> JwtVerifier:
    public = KeySet.import_key_set({"keys": [KEY.as_dict(private=False) | {"kid": "k1"}]})
    return JwtVerifier(issuer="bugnet", audience="bugnet", keys=lambda _kid: public,
                       is_revoked=(lambda sid: sid in revoked) if revoked is not None else None,
                       leeway=30)


def test_valid_token_gives_the_principal() -> None:
    p = verifier().verify(sign())
    assert (p.user_id, p.session_id, p.email) == ("u1", "s1", "a@b.c")


@pytest.mark.parametrize("token", [
    pytest.param(sign(exp=int(time.time()) - 120), id="expired-beyond-leeway"),
    pytest.param(sign(aud="someone-else"), id="wrong-audience"),
    pytest.param(sign(iss="evil"), id="wrong-issuer"),
    pytest.param(sign(key=OTHER), id="wrong-key-same-kid"),
    pytest.param(sign(kid="unknown"), id="unknown-kid"),
    pytest.param("not.a.jwt", id="garbage"),
    pytest.param("", id="empty"),
])
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        verifier().verify(token)


def test_missing_session_claim_is_refused() -> None:
    c = claims()
    c.pop("sid")
    token = jwt.encode({"alg": "ES256", "kid": "k1"}, c, KEY, algorithms=["ES256"])
    with pytest.raises(Unauthorized):
        verifier().verify(token)


def test_alg_none_and_hmac_confusion_are_refused() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    with pytest.raises(Unauthorized):
        verifier().verify(f"{header.decode()}.{body.decode()}.")
    # The classic confusion: HMAC-sign with the public key's PEM as the shared secret.
    head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1"}).encode()).rstrip(b"=")
    signing_input = head + b"." + body
    mac = hmac.new(KEY.as_pem(private=False), signing_input, hashlib.sha256).digest()
    forged = signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")
    with pytest.raises(Unauthorized):
        verifier().verify(forged.decode())


def test_tampered_claims_are_refused() -> None:
    head, _body, sig = sign().split(".")
    evil = base64.urlsafe_b64encode(json.dumps(claims(sub="admin")).encode()).rstrip(b"=")
    with pytest.raises(Unauthorized):
        verifier().verify(f"{head}.{evil.decode()}.{sig}")


def test_revoked_session_is_refused() -> None:
    revoked = RevocationSet()
    v = verifier(revoked)
    token = sign()
    assert v.verify(token).session_id == "s1"
    revoked.add("s1", time.time() + 60)
    with pytest.raises(Unauthorized, match="signed out"):
        v.verify(token)


def test_revocation_set_forgets_expired_entries() -> None:
    revoked = RevocationSet()
    revoked.add("old", time.time() - 1)
    revoked.add("new", time.time() + 60)
    revoked.prune()
    assert "old" not in revoked and "new" in revoked
