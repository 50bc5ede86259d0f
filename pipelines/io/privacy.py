"""Pseudonymised account ids: the keyed hash, and where its key comes from (never a flag
value in shell history)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

KEY_ENV = "DISTILL_RADAR_PSEUDONYM_KEY"
#: A shorter key (a word, a one-character test value) can be brute-forced: with it,
#: anyone holding the tables could test candidate account ids against the pseudonyms.
MIN_KEY_BYTES = 16


def pseudonym_key(key_file: str | None) -> bytes:
    """The key from ``key_file`` or ``$DISTILL_RADAR_PSEUDONYM_KEY``; a clear error otherwise
    (a one-line ``FileNotFoundError`` or ``ValueError``: the CLI's exit 2)."""
    if key_file:
        try:
            with open(key_file, "rb") as fh:
                key = fh.read().strip()
        except FileNotFoundError:
            raise FileNotFoundError(f"pseudonym key file not found: {key_file}") from None
        except OSError as exc:
            raise ValueError(f"pseudonym key file unreadable: {key_file} "
                             f"({exc.strerror or exc})") from None
        if not key:
            raise ValueError(f"pseudonym key file is empty: {key_file}")
        return _checked(key, f"the key in {key_file}")
    key = os.environ.get(KEY_ENV, "").encode("utf-8")
    if not key:
        raise ValueError(f"--pseudonymize-accounts needs a key: set ${KEY_ENV} "
                         "or pass --pseudonym-key-file FILE")
    return _checked(key, f"${KEY_ENV}")


def _checked(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{where} is {len(key)} byte(s); a pseudonym key needs at least "
                         f"{MIN_KEY_BYTES} (e.g. python -c 'import secrets; "
                         "print(secrets.token_hex(32))')")
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
