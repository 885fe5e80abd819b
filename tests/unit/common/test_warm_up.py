"""A fresh worker pays the first token verification's imports before it serves (Runtime.init_app
calls auth.warm_up): otherwise every request thread of a cold worker waits on that import."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from joserfc import jwt
from joserfc.jwk import ECKey

# In a fresh interpreter: verify a real token, with or without warming up first; print the
# modules the verification itself imported.
VERIFY = """
import json, sys
from joserfc.jwk import KeySet
from bugnet_common import auth
token, jwks, warm = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
verifier = auth.JwtVerifier(issuer="bugnet", audience="bugnet",
                            keys=lambda _kid: KeySet.import_key_set(jwks))
if warm:
    auth.warm_up()
before = set(sys.modules)
assert verifier.verify(token).user_id == "u1"
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def imported_by_first_verification(warm: bool) -> list[str]:
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
    now = int(time.time())
    token = jwt.encode({"alg": "ES256", "kid": "k1"}, {
        "iss": "bugnet", "aud": "bugnet", "sub": "u1", "sid": "s1", "iat": now,
        "exp": now + 600}, key, algorithms=["ES256"])
    jwks = json.dumps({"keys": [key.as_dict(private=False) | {"kid": "k1"}]})
    out = subprocess.run([sys.executable, "-c", VERIFY, token, jwks, "1" if warm else "0"],
                         capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_cold_verification_imports_modules() -> None:
    """The control: without warming up, the first verification imports (cryptography's
    OpenSSL backend among others), so the test below can fail."""
    assert any(m.startswith("cryptography.") for m in imported_by_first_verification(False))


def test_after_warming_up_the_first_verification_imports_nothing() -> None:
    assert imported_by_first_verification(True) == []
