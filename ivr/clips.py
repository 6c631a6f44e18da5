"""What a clip is and how its URL names it.

A clip is `(text, voice, rate, format, joins)` — `joins`: it runs straight into the next
clip of its sentence, so its trailing silence is trimmed (`ivr.audio`). On disk it is content-addressed by
`sha256` of that tuple. Its URL key must let *any* worker re-render it (a worker
that never saw the call), so the key has to carry the text — but a spoken balance is
financial data and must not sit in clear in URLs, platform logs or proxies. The key is
therefore the clip spec sealed with AES-SIV (deterministic authenticated encryption,
RFC 5297) under a key derived from the pseudonym secret: the same clip always gets the
same URL (so the voice platform and our disk cache both cache it), a forged or
truncated key fails authentication (→ 404), and the URL reveals nothing but equality.
No phone number is ever part of a clip.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ivr.audio import AudioFormat

__all__ = ["MAX_KEY_CHARS", "ClipSealer", "ClipSpec", "InvalidClipKey"]

MAX_KEY_CHARS = 2048
_MAX_TEXT_CHARS = 600
_VERSION = 1


class InvalidClipKey(ValueError):
    """A URL key that is malformed, forged, or names an impossible clip."""


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """Everything that determines a clip's audio."""

    text: str
    voice: str
    rate: int
    format: AudioFormat = "pcm16"
    #: The clip runs straight into the next one of its sentence (no trailing pause).
    joins: bool = False
    #: The on-disk content address: sha256(version, voice, rate, format, text[, joins]).
    digest: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.text.strip() or len(self.text) > _MAX_TEXT_CHARS:
            raise ValueError(f"clip text must be 1..{_MAX_TEXT_CHARS} characters")
        if self.format not in ("pcm16", "ulaw"):
            raise ValueError(f"unknown audio format {self.format!r}")
        object.__setattr__(self, "digest", hashlib.sha256(self.canonical()).hexdigest())

    def canonical(self) -> bytes:
        doc: list[object] = [_VERSION, self.voice, self.rate, self.format, self.text]
        if self.joins:
            # Appended only when set: clips that end a sentence keep their keys.
            doc.append(True)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ClipSealer:
    """Turns a `ClipSpec` into an opaque, deterministic URL key and back."""

    __slots__ = ("_aead",)

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the clip key secret must not be empty")
        key = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=None, info=b"hotline ivr clip key v1"
        ).derive(secret.encode("utf-8"))
        self._aead = AESSIV(key)

    def seal(self, spec: ClipSpec) -> str:
        sealed = self._aead.encrypt(spec.canonical(), None)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, key: str) -> ClipSpec:
        """The spec a key names; raises `InvalidClipKey` for anything else."""
        if not key or len(key) > MAX_KEY_CHARS:
            raise InvalidClipKey("bad key length")
        try:
            raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            plain = self._aead.decrypt(raw, None)
            doc = json.loads(plain)
            if not isinstance(doc, list) or len(doc) not in (5, 6):
                raise InvalidClipKey("unsupported clip key")
            version, voice, rate, fmt, text, *rest = doc
            if version != _VERSION or not isinstance(rate, int) or rest not in ([], [True]):
                raise InvalidClipKey("unsupported clip key")
            return ClipSpec(str(text), str(voice), rate, fmt, joins=bool(rest))
        except InvalidClipKey:
            raise
        except (InvalidTag, binascii.Error, ValueError, TypeError) as exc:
            raise InvalidClipKey("key does not authenticate") from exc
