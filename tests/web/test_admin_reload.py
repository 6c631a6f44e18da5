"""Flow reload through the admin endpoint and SIGHUP: bearer token, off by default, live
sessions kept, and every `hotline flows check` rule applied before anything changes."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from hotline.web.admin import sighup_ctx
from hotline.web.app import create_app
from tests.web.conftest import AT, ROOT, at_form, sample

ADMIN = "admin-token-for-tests-0123"
# The line of flows/balance.yaml's goodbye state after its prompt (no offer after it).
GOODBYE_AFTER_RESULT = '    after_result: false       # the caller chose to leave: hang up, no "press * to hear it again"\n'


async def test_admin_endpoint_is_off_by_default(
    aiohttp_client: Any, settings_factory: Any, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(settings_factory(redis_url=redis_url)))
    response = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 404


async def test_reload_needs_the_bearer_token_and_keeps_live_sessions(
    aiohttp_client: Any, settings_factory: Any, redis_url: str, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    settings = settings_factory(
        redis_url=redis_url, flows_dir=flows, security={"admin_token": ADMIN}
    )
    client = await aiohttp_client(create_app(settings))

    assert (await client.post("/admin/reload")).status == 401
    wrong = await client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert "WWW-Authenticate" in wrong.headers

    # A live session on the current version…
    first = await client.post(AT, data=at_form("live-1"))
    assert "1." in await first.text()
    original = (flows / "balance.yaml").read_text(encoding="utf-8")
    without_exit = re.sub(
        r'^ *- \{ key: "6", label: main.exit, next: goodbye \}\n', "", original, flags=re.M
    )
    goodbye_state = (
        "  goodbye:\n    kind: end\n    prompt: common.goodbye\n" + GOODBYE_AFTER_RESULT + "\n"
    )
    assert goodbye_state in without_exit  # the state nothing leads to any more goes too
    (flows / "balance.yaml").write_text(without_exit.replace(goodbye_state, ""), encoding="utf-8")
    ok = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert ok.status == 200
    body = await ok.json()
    assert body["reloaded"] is True and body["workers"] == "this"

    # …keeps its version: option 6 (gone from the new file) still works for it.
    old = await client.post(AT, data=at_form("live-1", "6"))
    assert (await old.text()).startswith("END ")
    # A new session gets the new menu without option 6.
    new = await client.post(AT, data=at_form("live-2"))
    assert "6." not in await new.text()

    # A broken file changes nothing and says where it broke.
    (flows / "balance.yaml").write_text("spec: 1\nid: balance\nstates: [\n", encoding="utf-8")
    broken = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert broken.status == 422
    error = (await broken.json())["error"]
    assert "balance.yaml:" in error
    still = await client.post(AT, data=at_form("live-3"))
    assert (await still.text()).startswith("CON ")

    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "hotline_flow_reloads_total", outcome="ok") == 1
    assert sample(metrics, "hotline_flow_reloads_total", outcome="failed") == 1
    assert sample(metrics, "hotline_rejected_requests_total", channel="admin") == 2


def _line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def _reload_settings(settings_factory: Any, redis_url: str, tmp_path: Path) -> tuple[Any, Path]:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    settings = settings_factory(
        redis_url=redis_url, flows_dir=flows, security={"admin_token": ADMIN}
    )
    return settings, flows


async def test_a_flow_naming_a_missing_prompt_is_refused_and_the_old_one_stays(
    aiohttp_client: Any, settings_factory: Any, redis_url: str, tmp_path: Path
) -> None:
    settings, flows = _reload_settings(settings_factory, redis_url, tmp_path)
    client = await aiohttp_client(create_app(settings))
    balance = flows / "balance.yaml"
    original = balance.read_text(encoding="utf-8")
    # Loads fine (the schema cannot know the catalogs), but no catalog has the key.
    balance.write_text(
        original.replace("prompt: common.goodbye", "prompt: common.farewell"), encoding="utf-8"
    )
    refused = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert refused.status == 422
    body = await refused.json()
    assert body["reloaded"] is False
    line = _line_of(balance, "  goodbye:")
    errors = body["error"].splitlines()
    assert len(errors) == 2  # one per language, each `file:line: message [rule]`
    for error in errors:
        assert error.startswith(f"{balance}:{line}: ")
        assert "'common.farewell'" in error and error.endswith("[missing-prompt]")

    # New sessions still start on the loaded flow, exit option and all.
    still = await client.post(AT, data=at_form("after-refusal"))
    assert "6." in await still.text()
    bye = await client.post(AT, data=at_form("after-refusal", "6"))
    assert (await bye.text()).startswith("END ")

    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "hotline_flow_reloads_total", outcome="failed") == 1
    assert sample(metrics, "hotline_flow_reloads_total", outcome="ok") == 0


async def test_a_flow_running_an_unregistered_action_is_refused(
    aiohttp_client: Any, settings_factory: Any, redis_url: str, tmp_path: Path
) -> None:
    settings, flows = _reload_settings(settings_factory, redis_url, tmp_path)
    client = await aiohttp_client(create_app(settings))
    balance = flows / "balance.yaml"
    original = balance.read_text(encoding="utf-8")
    balance.write_text(
        original.replace("action: balance.lookup", "action: balance.teleport", 1),
        encoding="utf-8",
    )
    refused = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert refused.status == 422
    error = (await refused.json())["error"]
    line = _line_of(balance, "    action: balance.teleport")
    assert error.startswith(f"{balance}:{line}: ")
    assert "'balance.teleport' is not registered" in error and "[unknown-action]" in error
    # The old flow's action still runs for a new session.
    await client.post(AT, data=at_form("after-action"))
    shown = await client.post(AT, data=at_form("after-action", "1"))
    assert (await shown.text()).startswith("END ")


async def _sighup_and_wait(client: Any, outcome: str, count: int) -> None:
    """Send this process SIGHUP and wait until the app counted the reload."""
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(500):
        metrics = await (await client.get("/metrics")).text()
        if sample(metrics, "hotline_flow_reloads_total", outcome=outcome) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {outcome} reload after SIGHUP")


async def test_sighup_with_an_invalid_flow_keeps_the_loaded_one(
    aiohttp_client: Any,
    settings_factory: Any,
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, flows = _reload_settings(settings_factory, redis_url, tmp_path)
    app = create_app(settings)
    app.cleanup_ctx.append(sighup_ctx)  # as `hotline serve` does for each worker
    client = await aiohttp_client(app)
    balance = flows / "balance.yaml"
    original = balance.read_text(encoding="utf-8")
    balance.write_text(
        original.replace("prompt: common.goodbye", "prompt: common.farewell"), encoding="utf-8"
    )
    with caplog.at_level(logging.ERROR, logger="hotline.web.admin"):
        await _sighup_and_wait(client, "failed", 1)
    assert "'common.farewell'" in caplog.text and f"{balance}:" in caplog.text
    still = await client.post(AT, data=at_form("after-hup"))
    assert "6." in await still.text()

    # Once fixed, the next SIGHUP installs it (option 6 gone, its state with it).
    fixed = re.sub(
        r'^ *- \{ key: "6", label: main.exit, next: goodbye \}\n', "", original, flags=re.M
    )
    fixed = fixed.replace(
        "  goodbye:\n    kind: end\n    prompt: common.goodbye\n" + GOODBYE_AFTER_RESULT + "\n", ""
    )
    balance.write_text(fixed, encoding="utf-8")
    await _sighup_and_wait(client, "ok", 1)
    new = await client.post(AT, data=at_form("after-fix"))
    assert "6." not in await new.text()


async def test_a_failing_after_reload_callback_is_logged_and_the_reload_stands(
    aiohttp_client: Any,
    settings_factory: Any,
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hotline.web.admin import RELOAD_TASKS
    from hotline.web.keys import FLOWS_RELOADED

    async def broken_warm_up(app: Any, flows: Any) -> None:
        raise OSError("disk full")

    settings, _ = _reload_settings(settings_factory, redis_url, tmp_path)
    app = create_app(settings)
    app[FLOWS_RELOADED].append(broken_warm_up)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="hotline.web.admin"):
        ok = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
        assert ok.status == 200 and (await ok.json())["reloaded"] is True
        await asyncio.gather(*app[RELOAD_TASKS])
    assert "after-reload callback failed" in caplog.text and "disk full" in caplog.text
