"""Logging: one JSON line per request in production, rich lines on a terminal.

Any code on a request's path may `note(state=..., outcome=...)`; the access-log
middleware (`hotline.web.observe`) writes those facts as one line when the request ends,
and every other line logged meanwhile carries the same `request_id`.
`Scrubber` is defence in depth: callers log pseudonyms, never numbers or money, but
a digit run that looks like a phone number or an amount is redacted anyway, also when it
is URL-encoded (`%2B8613800138000`, `12.50%E5%85%83`), escaped (`\\u00a51250`,
`b'\\xc2\\xa51250'`) or the value of a money-named JSON or form key (`"amount_minor": 1250`).
It is structural, not a courtesy of our own callers: `setup_logging` puts it on the root
handler (every propagated record, message, args, fields, traceback and stack) and on the
loggers of the libraries that can quote request data (aiohttp, asyncio, redis), so a
record of theirs is scrubbed before any handler, ours or not, sees it.
Nothing is configured at import; the CLI calls `setup_logging()` once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import unquote

import orjson

__all__ = [
    "THIRD_PARTY_LOGGERS",
    "AccessLog",
    "JsonFormatter",
    "Scrubber",
    "access_log",
    "bind_request",
    "current_fields",
    "note",
    "note_turn",
    "redact",
    "scrub",
    "setup_logging",
    "unescape",
]

_FIELDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "hotline_request_fields", default=None
)

# 7-15 digits, optionally with single spaces/dashes/dots between groups, optional `+`:
# +8613800138000, 13800138000, 138 0013 8000, 138-0013-8000. Not inside a longer word,
# so hex pseudonyms and request ids (which mix letters in) survive.
_PHONE = re.compile(r"(?<![0-9A-Za-z])\+?\d(?:[ \-.]?\d){6,14}(?![0-9A-Za-z])")
# Amounts with two decimals (12.50, 1,234.50) and anything glued to a currency sign/code.
_MONEY = re.compile(
    r"(?:[¥$€£]|\b(?:CNY|RMB|KES|NGN|USD|EUR|UGX|TZS|RWF)\s?)\s?\d[\d,]*(?:\.\d+)?"
    r"|\d[\d,]*(?:\.\d+)?\s?(?:元|角|分)"
    r"|(?<![0-9A-Za-z.])\d[\d,]*\.\d{2}(?![0-9A-Za-z.])"
)
# Text neither pattern can match is returned without running them (measured: ~5 µs a
# value): every alternative needs a digit (`\d`, as they spell it); and in a lowercase hex
# word with a letter (a pseudonym) every digit run touches a letter or an end, which
# `_PHONE`'s lookarounds refuse, while `_MONEY` needs a sign, a code, 元角分 or a dot.
_DIGIT = re.compile(r"\d")
_HEX_WORD = re.compile(r"[0-9a-f]*[a-f][0-9a-f]*")
_HEX_CHARS = "0123456789abcdef"
#: `.000Z` … `.999Z`: the access line's milliseconds by index, not by a format (~4 k
#: instructions less a line).
_MILLIS = tuple(f".{n:03d}Z" for n in range(1000))
# The value of a key that names money or a number, in JSON (`"amount_minor": 1250`, also
# inside an escaped JSON string) or a form (`balance=1250`): redacted whatever its shape.
_KEYED = re.compile(
    r"(?i)((?:amount|balance|minor|money|credit|msisdn|phone|caller|callernumber|from)"
    r"[A-Za-z_]*\\?\"?\s*[:=]\s*\\?\"?)[+-]?\d[\d.,]*"
)
# Escapes that can hide a digit run behind letters: %2B, \u00a5, \xa5.
_ESCAPED = re.compile(r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})")
_BYTE_ESCAPES = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")
REDACTED = "[redacted]"
_CLEAN_MAX = 1024  # texts the access log remembers scrubbed (names: flows, states, methods)
_NUMBERS = (int, float)
_HANDLER_NAME = "hotline"
#: Loggers of libraries that can quote request or upstream data. A logger's filter sees
#: only records created on it, so each is named (the root handler's filter sees the rest).
THIRD_PARTY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "asyncio",
    "redis",
    "py.warnings",
)
# Values of these fields are ours (numbers, names from a fixed vocabulary: the
# route template, dialect and channel names, outcomes): not scrubbed. The method is
# the client's to choose, so it is scrubbed like any text.
_TRUSTED_FIELDS = frozenset(
    {
        "latency_ms",
        "status",
        "request_id",
        "pid",
        "hops",
        "bytes",
        "route",
        "dialect",
        "channel",
        "outcome",
        "session",
    }
)


def _bytes_text(match: re.Match[str]) -> str:
    raw = bytes.fromhex(match.group(0).replace("\\x", ""))
    return raw.decode("utf-8", errors="replace")


def unescape(text: str) -> str:
    """Percent-escapes, `\\uXXXX` and `\\xXX` runs decoded (twice, for double encoding),
    so a number written as `%2B86…` or `\\u00a512.50` is a number again."""
    for _ in range(2):
        if not _ESCAPED.search(text):
            break
        text = unquote(text, errors="replace")
        text = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        text = _BYTE_ESCAPES.sub(_bytes_text, text)
    return text


def redact(text: str) -> str:
    """`scrub` without its shortcuts: what every text goes through."""
    text = unescape(text)
    text = _KEYED.sub(lambda m: m.group(1) + REDACTED, text)
    return _PHONE.sub(REDACTED, _MONEY.sub(REDACTED, text))


def scrub(text: str) -> str:
    """Redact anything shaped like a phone number or a money amount, escaped or not."""
    if not _DIGIT.search(text) or _hex_word(text):
        return text
    return redact(text)


def _hex_word(text: str) -> bool:
    """`_HEX_WORD.fullmatch(text)` by string methods (a pseudonym on every access line:
    ~700 instructions less than the regex)."""
    return text.isascii() and not text.isdigit() and not text.strip(_HEX_CHARS) and text != ""


def bind_request(fields: dict[str, Any]) -> contextvars.Token[dict[str, Any] | None]:
    """Start collecting facts for the current request (the middleware calls this)."""
    return _FIELDS.set(fields)


def current_fields() -> dict[str, Any] | None:
    return _FIELDS.get()


def note(**fields: Any) -> None:
    """Add facts (dialect, state, outcome, pseudonym …) to this request's log line.

    A no-op outside a request, so the engine can call it unconditionally.
    """
    bound = _FIELDS.get()
    if bound is not None:
        bound.update(fields)


def note_turn(flow: str, state: str, ends: bool, events: tuple[str, ...]) -> None:
    """Translate an engine turn's events into request facts (and so into metrics).

    `started` → `session="started"`; `invalid:<state>` → `invalid=True`;
    `ended:<…>` → `ended=True`; `repeated` → outcome `repeat`; `apology` → `apology`.
    """
    bound = _FIELDS.get()
    if bound is None:
        return
    bound["flow"] = flow or bound.get("flow")
    bound["state"] = state
    outcome = "end" if ends else "continue"
    for event in events:
        if event == "started":
            bound["session"] = "started"
        elif event.startswith("invalid:"):
            bound["invalid"] = True
            bound["state"] = event.partition(":")[2] or state
        elif event.startswith("ended:"):
            bound["ended"] = True
        elif event in ("repeated", "apology"):
            outcome = "repeat" if event == "repeated" else "apology"
    bound["outcome"] = outcome


class Scrubber(logging.Filter):
    """Redacts phone numbers and amounts from every record that reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            record.fields = {k: _scrub_value(k, v) for k, v in fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def _scrub_value(key: str, value: Any) -> Any:
    if key in _TRUSTED_FIELDS or value is None or isinstance(value, (int, float)):
        return value
    return scrub(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request facts, extra `fields`."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def _timestamp(self, record: logging.LogRecord) -> str:
        second, text = self._second
        if int(record.created) != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            self._second = (int(record.created), text)
        return f"{text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        bound = _FIELDS.get()
        if bound is not None and "request_id" in bound and record.name != "hotline.access":
            entry["request_id"] = bound["request_id"]
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return _dumps(entry)


# A dataclass in a log field is written as its text (`default=str`): orjson's own dataclass
# support reads the instance's memory as a plain class's, which a compiled class
# (setup.py) is not.
_AS_TEXT = orjson.OPT_PASSTHROUGH_DATACLASS


def _dumps(entry: dict[str, Any]) -> str:
    """Compact JSON, non-ASCII as is. orjson (measured: ~0.5 µs against json's ~5 µs for
    an access line); json for what orjson refuses (a lone surrogate, a huge int)."""
    try:
        return orjson.dumps(entry, default=str, option=_AS_TEXT).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))


class _HumanFormatter(logging.Formatter):
    """Message then `key=value` facts, for rich's terminal handler."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping) and fields:
            message += "  " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return message


class AccessLog:
    """The access line's own way out: the JSON line `JsonFormatter` would write for it,
    scrubbed as the root handler's `Scrubber` would, written once per event-loop turn.

    Through `logging` the access line cost ~45 µs a request (a record, filters, the
    handler's lock, formatting, one write and flush per line; py-spy: ~15 % of a USSD
    step). Here it is the fields' scrub and one `orjson.dumps`; the lines of a loop turn go
    out in one write. It serves only while the installed JSON handler is the root's only
    handler — anything else attached (a test's capture, an operator's handler) gets the
    ordinary record instead. Nothing is lost at shutdown: `flush` runs at the loop turn's
    end, when the app stops and at exit.
    """

    def __init__(self, handler: logging.StreamHandler[TextIO]) -> None:
        self._handler = handler
        self._lines: list[bytes] = []
        self._scheduled = False
        self._second: tuple[int, str] = (-1, "")
        self._clean: dict[str, str] = {}  # text → scrubbed, for the few names that repeat

    def serves(self) -> bool:
        """Whether `write` may be used now (our handler is the root's only one)."""
        handlers = logging.root.handlers
        return len(handlers) == 1 and handlers[0] is self._handler

    def write(self, fields: Mapping[str, Any], created: float | None = None) -> None:
        """One access line, `level` info, from the request's facts."""
        now = time.time() if created is None else created
        second, text = self._second
        if int(now) != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            self._second = (int(now), text)
        entry: dict[str, Any] = {
            "ts": text + _MILLIS[int((now % 1) * 1000)],
            "level": "info",
            "logger": "hotline.access",
            "msg": "request",
        }
        # `_scrub_value` inlined, and a text seen before (a method, flow or state name)
        # scrubbed once. Pseudonyms pass `scrub` cheaply as hex words and are not
        # remembered: production's do not repeat the way a benchmark's five numbers do.
        clean = self._clean
        for key, value in fields.items():
            if key in _TRUSTED_FIELDS or value is None or isinstance(value, _NUMBERS):
                entry[key] = value
            elif type(value) is str:
                done = clean.get(value)
                if done is None:
                    done = scrub(value)
                    if key != "subscriber":
                        if len(clean) >= _CLEAN_MAX:
                            clean.clear()
                        clean[value] = done
                entry[key] = done
            else:
                entry[key] = scrub(str(value))
        try:
            line = orjson.dumps(entry, default=str, option=_AS_TEXT)
        except TypeError:
            line = _dumps(entry).encode("utf-8")
        self._lines.append(line)
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the lines waiting, in order, in one write (under the handler's lock)."""
        self._scheduled = False
        if not self._lines:
            return
        data = b"\n".join(self._lines) + b"\n"
        self._lines.clear()
        handler = self._handler
        handler.acquire()
        try:
            stream = handler.stream
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                stream.flush()  # whatever the handler wrote before goes first
                buffer.write(data)
                buffer.flush()
            else:
                stream.write(data.decode("utf-8"))
                stream.flush()
        except (OSError, ValueError):  # a closed stream at exit: nothing left to tell
            pass
        finally:
            handler.release()


def access_log() -> AccessLog | None:
    """The installed `AccessLog`, if `setup_logging` made a JSON handler."""
    for handler in logging.root.handlers:
        found = getattr(handler, "access_log", None)
        if isinstance(found, AccessLog):
            return found
    return None


def setup_logging(
    json_logs: bool | None = None, level: str = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger once: JSON unless the stream is a terminal (or told).

    Returns the installed handler (tests and the CLI may remove it again).
    """
    out = stream if stream is not None else sys.stderr
    use_json = (not out.isatty()) if json_logs is None else json_logs
    handler: logging.Handler
    if use_json:
        stream_handler = logging.StreamHandler(out)
        stream_handler.setFormatter(JsonFormatter())
        lines = AccessLog(stream_handler)
        stream_handler.access_log = lines  # type: ignore[attr-defined]
        atexit.register(lines.flush)
        handler = stream_handler
    else:
        from rich.console import Console  # only terminals pay for rich
        from rich.logging import RichHandler

        handler = RichHandler(
            console=Console(file=out, stderr=out is sys.stderr),
            show_path=False,
            rich_tracebacks=False,
            markup=False,
        )
        handler.setFormatter(_HumanFormatter())
    handler.addFilter(Scrubber())
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, Scrubber) for f in logger.filters):
            logger.addFilter(Scrubber())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(old)
    handler.set_name(_HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's own access log would print raw paths (path tokens) and peer addresses.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler
