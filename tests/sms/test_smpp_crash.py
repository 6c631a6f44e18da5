"""hotline killed (SIGKILL) mid-batch while its sender delivers the outbox over SMPP to
an SMSC not written here (`smpp34`'s server, `tests/sms/smsc.py`), then started again:
no message reaches the SMSC twice, every message not left *in doubt* arrives exactly
once, and at most the one row in flight is in doubt."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

from hotline.base.values import Text
from hotline.store.outbox import Outbox
from tests.conftest import free_port
from tests.sms.conftest import ROOT, sms_flows
from tests.sms.smsc import SmscPeer
from tests.sms.test_outbox_crash import _until

PHONE = "8613800138000"
COUNT = 120


def _serve(smsc: SmscPeer, tmp_path: Path, outbox: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOTLINE_CHANNELS": '["sms"]',
        "HOTLINE_FLOWS_DIR": str(sms_flows(tmp_path)),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "HOTLINE_SMS__TRANSPORT": "smpp",
        "HOTLINE_SMS__SENDER": "smpp",
        "HOTLINE_SMS__SMPP__HOST": "127.0.0.1",
        "HOTLINE_SMS__SMPP__PORT": str(smsc.port),
        "HOTLINE_SMS__SMPP__SYSTEM_ID": "hotline",
        "HOTLINE_SMS__SMPP__PASSWORD": "pw",
        "HOTLINE_SMS__SMPP__RECONNECT_MIN": "0.1",
        "HOTLINE_SMS__OUTBOX_PATH": str(outbox),
        "HOTLINE_SMS__SEND_RATE": "40",
        "HOTLINE_SMS__LEASE_SECONDS": "2",
        "HOTLINE_SMS__DOUBT_GRACE": "3",
        "HOTLINE_JSON_LOGS": "true",
    }
    program = "import sys; from hotline.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", program, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killed_mid_batch_over_smpp_sends_nothing_twice(tmp_path: Path) -> None:
    smsc = SmscPeer(free_port())
    await smsc.start()
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(f"sqlite:///{path}")
    try:
        ids = [
            await outbox.send(PHONE, "sms.help", {"keywords": Text(f"n{i:03d}")}, "en")
            for i in range(COUNT)
        ]
        first = _serve(smsc, tmp_path, path)
        try:
            await _until(outbox, lambda c: c.get("sent", 0) + c.get("delivered", 0) >= 30, 30)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = await outbox.counts()
        assert killed_at.get("queued", 0) + killed_at.get("claimed", 0) > 0, killed_at
        second = _serve(smsc, tmp_path, path)
        try:
            settled = await _until(
                outbox,
                lambda c: set(c) <= {"sent", "delivered", "failed"} and sum(c.values()) == COUNT,
                40,
            )
        finally:
            second.terminate()
            second.wait(timeout=10)
        rows = await outbox.rows(ids)
    finally:
        await outbox.close()
        await smsc.stop()

    texts = collections.Counter(s.text for s in smsc.submits() if s.status is None)
    assert all(n == 1 for n in texts.values()), [t for t, n in texts.items() if n > 1]
    assert sum(1 for e in smsc.events if e.get("bound") == "hotline") == 2
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
