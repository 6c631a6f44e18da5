"""Prompts reload with flows: `/admin/reload` (and SIGHUP, the same function) reread
`prompts/`, checked before anything is installed; `hotline serve --dev` reloads on a file
change. Through the USSD gateway's HTTP, with sessions in a real Redis."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.web.admin import dev_reload_ctx
from hotline.web.app import create_app
from tests.web.conftest import AT, ROOT, at_form

ADMIN = "admin-token-for-tests-0123"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
Client = TestClient[web.Request, web.Application]


def copy_content(tmp_path: Path) -> tuple[Path, Path]:
    flows, prompts = tmp_path / "flows", tmp_path / "prompts"
    shutil.copytree(ROOT / "flows", flows)
    shutil.copytree(ROOT / "prompts", prompts)
    return flows, prompts


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new), "utf-8")


async def title(client: Client, session: str) -> str:
    response = await client.post(AT, data=at_form(session))
    return (await response.text()).splitlines()[0]


async def test_admin_reload_rereads_prompts_and_checks_them_first(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings_factory: Any,
    redis_url: str,
    tmp_path: Path,
) -> None:
    flows, prompts = copy_content(tmp_path)
    settings = settings_factory(
        redis_url=redis_url,
        flows_dir=flows,
        prompts_dir=prompts,
        security={"admin_token": ADMIN},
    )
    client = await aiohttp_client(create_app(settings))
    assert await title(client, "a") == "CON 话费查询"

    edit(prompts / "zh-CN.yaml", "    title: 话费查询\n", "    title: 话费自助查询\n")
    ok = await client.post("/admin/reload", headers=AUTH)
    assert ok.status == 200, await ok.text()
    assert await title(client, "b") == "CON 话费自助查询"

    # A broken prompt file: reported like flows check, with its rule; nothing changes.
    edit(prompts / "zh-CN.yaml", "话费自助查询", "话费{查询")
    refused = await client.post("/admin/reload", headers=AUTH)
    assert refused.status == 422
    error = (await refused.json())["error"]
    assert error.endswith("zh-CN.yaml:6: prompt 'main.title': stray '{' (write {{) [prompt-brace]")
    assert await title(client, "c") == "CON 话费自助查询"

    # Prompts the flows need, gone: the flows are checked against the new prompts.
    edit(prompts / "zh-CN.yaml", "话费{查询", "话费查询")
    edit(prompts / "en.yaml", "    balance: Main balance\n", "")
    refused = await client.post("/admin/reload", headers=AUTH)
    assert refused.status == 422
    assert "prompt 'main.balance' is missing in en" in (await refused.json())["error"]
    assert await title(client, "d") == "CON 话费自助查询"


async def test_serve_dev_reloads_flows_and_prompts_when_a_file_changes(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings_factory: Any,
    redis_url: str,
    tmp_path: Path,
) -> None:
    flows, prompts = copy_content(tmp_path)
    settings = settings_factory(redis_url=redis_url, flows_dir=flows, prompts_dir=prompts)
    app = create_app(settings)
    app.cleanup_ctx.append(dev_reload_ctx(interval=0.02))  # as `hotline serve --dev` does
    client = await aiohttp_client(app)
    assert await title(client, "a") == "CON 话费查询"

    edit(prompts / "zh-CN.yaml", "    title: 话费查询\n", "    title: 查询中心\n")
    for attempt in range(1500):  # polled every 0.02 s, up to 30 s on a busy machine
        if await title(client, f"p{attempt}") == "CON 查询中心":
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the prompt change was not picked up")

    # A change that fails the check is logged and leaves the loaded content alone.
    edit(flows / "balance.yaml", "start: main", "start: nowhere")
    await asyncio.sleep(0.2)
    assert await title(client, "after") == "CON 查询中心"
