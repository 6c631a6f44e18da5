"""Redis keys of the SMS channel that name one subscriber's message by a hash.

`hotline:{env}:sms:{kind}:{digest}` — a BLAKE2b digest (16 octets) of the fields that
make the key, joined by U+001F: the subscriber's pseudonym, the service number, the
gateway's id, the text… none of them readable from the key (DESIGN.md §10). The MO
ledger (`sms.dedupe.mo_key`) and the parts of long MOs (`sms.concat.parts_key`) use it.
"""

from __future__ import annotations

import hashlib

__all__ = ["hashed_key"]


def hashed_key(env: str, kind: str, *fields: str | int) -> str:
    """The key of `kind` (`mo`, `parts`) for these fields."""
    joined = "\x1f".join(str(field) for field in fields)
    digest = hashlib.blake2b(joined.encode("utf-8"), digest_size=16).hexdigest()
    return f"hotline:{env}:sms:{kind}:{digest}"
