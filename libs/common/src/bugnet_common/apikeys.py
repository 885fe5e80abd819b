"""Project API keys: `sk_live_` + 43 URL-safe characters (32 random bytes), stored as SHA-256.

A key carries 256 bits of entropy, so a fast hash is enough to make the stored form useless
to an attacker while keeping lookups O(1) by hash on the hot SDK path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "sk_live_"
_FORMAT = re.compile(r"^sk_live_[A-Za-z0-9_-]{32,128}$")


def generate_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def is_well_formed(key: str) -> bool:
    return bool(_FORMAT.match(key))


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), stored_hash)


def mask_api_key(key: str) -> str:
    return f"{PREFIX}…{key[-4:]}"
