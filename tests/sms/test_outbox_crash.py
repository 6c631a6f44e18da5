"""hotline killed (SIGKILL) mid-batch while its sender delivers the outbox through a real
Kannel, then started again: no message reaches the handset twice, every message not
left *in doubt* arrives exactly once, and at most the one row in flight is in doubt."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.base.values import Text
from hotline.store.outbox import Outbox
from tests.conftest import free_port
from tests.sms.conftest import ROOT, sms_flows
from tests.sms.kannel import KannelPeer, Mt

PHONE = "8613800138000"
COUNT = 120


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[KannelPeer]:
    peer = KannelPeer(tmp_path / "kannel", free_port())
    (tmp_path / "kannel").mkdir()
    peer.start()
    yield peer
    peer.stop()


def _serve(kannel: KannelPeer, tmp_path: Path, outbox: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOTLINE_CHANNELS": '["sms"]',
        "HOTLINE_FLOWS_DIR": str(sms_flows(tmp_path)),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "HOTLINE_SMS__SENDER": "kannel",
        "HOTLINE_SMS__KANNEL_SENDSMS_URL": kannel.sendsms_url,
        "HOTLINE_SMS__KANNEL_USERNAME": KannelPeer.USER,
        "HOTLINE_SMS__KANNEL_PASSWORD": KannelPeer.PASSWORD,
        "HOTLINE_SMS__PUBLIC_BASE_URL": f"http://127.0.0.1:{kannel.hotline_port}",
        "HOTLINE_SMS__OUTBOX_PATH": str(outbox),
        "HOTLINE_SMS__SEND_RATE": "40",
        "HOTLINE_SMS__LEASE_SECONDS": "2",
        "HOTLINE_SMS__DOUBT_GRACE": "3",
        "HOTLINE_JSON_LOGS": "true",
    }
    program = "import sys; from hotline.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", program, "serve", "--port", str(kannel.hotline_port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _until(outbox: Outbox, done: object, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = await outbox.counts()
        if done(counts):  # type: ignore[operator]
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"outbox still {counts}")
        await asyncio.sleep(0.05)


async def test_killed_mid_batch_sends_nothing_twice(kannel: KannelPeer, tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(f"sqlite:///{path}")
    try:
        ids = [
            await outbox.send(PHONE, "sms.help", {"keywords": Text(f"n{i:03d}")}, "en")
            for i in range(COUNT)
        ]
        received: list[Mt] = []
        handset = asyncio.create_task(
            kannel.collect(PHONE, expect=COUNT + 1, timeout=60, into=received)
        )
        first = _serve(kannel, tmp_path, path)
        try:
            await _until(outbox, lambda c: c.get("sent", 0) + c.get("delivered", 0) >= 30, 30)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = await outbox.counts()
        assert killed_at.get("queued", 0) + killed_at.get("claimed", 0) > 0, killed_at
        second = _serve(kannel, tmp_path, path)
        try:
            settled = await _until(
                outbox,
                # `sent` is final too: a report that reached the killed worker is lost.
                lambda c: set(c) <= {"sent", "delivered", "failed"} and sum(c.values()) == COUNT,
                40,
            )
        finally:
            second.terminate()
            second.wait(timeout=10)
        await asyncio.sleep(2)  # a duplicate would arrive by now
        handset.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handset
    finally:
        await outbox.close()

    texts = collections.Counter(mt.text for mt in received)
    assert all(n == 1 for n in texts.values()), [t for t, n in texts.items() if n > 1]
    rows = await Outbox(f"sqlite:///{path}").rows(ids)
    failed = [row for row in rows if row["state"] == "failed"]
    assert len(failed) <= 1, failed
    assert all("in doubt" in row["last_error"] for row in failed)
    for i, row in enumerate(rows):
        text = f"Unknown keyword. Send one of: n{i:03d}【hotline】"
        if row["state"] in ("sent", "delivered"):
            assert texts[text] == 1, (i, row)
        else:
            assert texts[text] <= 1
    assert settled.get("sent", 0) + settled.get("delivered", 0) >= COUNT - 1
