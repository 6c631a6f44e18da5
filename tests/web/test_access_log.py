"""The access line's own writer: the same JSON line as through `logging`, scrubbed,
written once per event-loop turn, never lost at exit."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from hotline.base.logs import JsonFormatter, Scrubber, access_log, setup_logging

LINE = {
    "method": "POST",
    "route": "/ussd/africastalking",
    "status": 200,
    "latency_ms": 1.25,
    "request_id": "req-0123456789",
    "flow": "balance",
    "state": "show_balance",
    "outcome": "end",
    "subscriber": "+8613800138000",  # never logged like this; the writer scrubs it anyway
}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = setup_logging(json_logs=True, stream=out)
    yield out
    logging.root.removeHandler(handler)


@contextmanager
def alone() -> Iterator[None]:
    """Our handler as the root's only one (pytest attaches its capture per test phase)."""
    ours = [h for h in logging.root.handlers if access_log_of(h) is not None]
    others = [h for h in logging.root.handlers if h not in ours]
    for other in others:
        logging.root.removeHandler(other)
    try:
        yield
    finally:
        for other in others:
            logging.root.addHandler(other)


def access_log_of(handler: logging.Handler) -> object:
    return getattr(handler, "access_log", None)


def _through_logging(fields: dict[str, object]) -> dict[str, object]:
    record = logging.LogRecord("hotline.access", logging.INFO, __file__, 1, "request", None, None)
    record.fields = dict(fields)
    Scrubber().filter(record)
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


async def test_lines_of_a_loop_turn_go_out_together_and_read_as_through_logging(
    stream: io.StringIO,
) -> None:
    writer = access_log()
    with alone():
        assert writer is not None and writer.serves()
        for _ in range(3):
            writer.write(LINE)
        assert stream.getvalue() == ""  # not yet: at the end of this loop turn
        await asyncio.sleep(0)
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert len(lines) == 3
    expected = _through_logging(LINE)
    for line in lines:
        assert {k: v for k, v in line.items() if k != "ts"} == {
            k: v for k, v in expected.items() if k != "ts"
        }
    assert "13800138000" not in stream.getvalue()


def test_another_handler_gets_ordinary_records(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    writer = access_log()
    assert writer is not None
    with alone():
        assert writer.serves()
        logging.root.addHandler(caplog.handler)
        try:
            assert not writer.serves()
        finally:
            logging.root.removeHandler(caplog.handler)


def test_lines_waiting_at_exit_are_written() -> None:
    code = (
        "import asyncio, sys\n"
        "from hotline.base.logs import setup_logging, access_log\n"
        "setup_logging(json_logs=True, stream=sys.stdout)\n"
        "async def main():\n"
        "    for n in range(5):\n"
        "        access_log().write({'route': '/x', 'status': 200, 'n': n})\n"
        "    asyncio.get_running_loop().stop()\n"  # the loop ends before its next turn
        "loop = asyncio.new_event_loop()\n"
        "loop.create_task(main())\n"
        "loop.run_forever()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert [json.loads(line)["n"] for line in done.stdout.splitlines()] == [0, 1, 2, 3, 4]
