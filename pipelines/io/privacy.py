"""Pseudonymised account ids: the keyed hash, and where its key comes from (never a flag
value in shell history)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

KEY_ENV = "DISTILL_RADAR_PSEUDONYM_KEY"


def pseudonym_key(key_file: str | None) -> bytes:
    """The key from ``key_file`` or ``$DISTILL_RADAR_PSEUDONYM_KEY``; a clear error otherwise."""
    if key_file:
        with open(key_file, "rb") as fh:
            key = fh.read().strip()
        if not key:
            raise ValueError(f"pseudonym key file is empty: {key_file}")
        return key
    key = os.environ.get(KEY_ENV, "").encode("utf-8")
    if not key:
        raise ValueError(f"--pseudonymize-accounts needs a key: set ${KEY_ENV} "
                         "or pass --pseudonym-key-file FILE")
    return key


Pseudonymizer = Callable[[str], str]


def make_pseudonymizer(key: bytes) -> Pseudonymizer:
    """Keyed hash of an account id: stable per key, irreversible without it."""

    def pseudonym(account_id: str) -> str:
        digest = hmac.new(key, account_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return "pa-" + digest[:20]

    return pseudonym


def redact_raw(raw: str, account_id: str | None, pseudonym: Pseudonymizer | None) -> str:
    """Dead-letter evidence must not leak a raw account id on pseudonymised runs."""
    if pseudonym is None or not account_id:
        return raw
    return raw.replace(account_id, pseudonym(account_id))
