"""Passwords and tokens at rest.

Passwords: scrypt (memory-hard, in the standard library), n=2**14, r=8, p=1 (16 MiB), with a
per-password salt, stored as ``scrypt$n$r$p$salt$hash``. Tokens (sessions, devices, invitation
links) are 256-bit random values; only their SHA-256 is stored, which is enough for values
with that much entropy and lets the server look them up by hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_DKLEN = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=_DKLEN,
        maxmem=256 * 1024 * 1024,
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash of a random password, compared against when a username does not exist so that the
# time taken does not tell whether an account exists.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def new_token(prefix: str) -> str:
    """A random token such as ``dcs_…`` (session), ``dcp_…`` (point device), ``dci_…`` (invite)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
