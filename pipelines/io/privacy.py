"""Where the pseudonymisation key comes from: never a flag value in shell history."""

from __future__ import annotations

import os

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
