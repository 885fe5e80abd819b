"""Encryption of stored credentials (git tokens, webhook secrets, Discord webhook URLs).

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from `settings.secret_key`; what is
stored is the Fernet token, never the plain value.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(b"bugnet-integrations-v1:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret: str, value: str) -> str:
    """`value` encrypted with the key derived from `secret`."""
    return _fernet(secret).encrypt(value.encode()).decode()


def decrypt(secret: str, token: str) -> str:
    """The plain value of `token`; ValueError when it was made with another key or altered."""
    try:
        return _fernet(secret).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored credential cannot be decrypted with the configured key") from None
