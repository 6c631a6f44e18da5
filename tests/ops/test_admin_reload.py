"""Flow reload through the admin endpoint: bearer token, off by default, live sessions kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hotline.app import create_app
from tests.ops.conftest import AT, ROOT, at_form, sample

ADMIN = "admin-token-for-tests-0123"


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
    (flows / "balance.yaml").write_text(
        original.replace('- { key: "6", label: main.exit, next: goodbye }\n', ""),
        encoding="utf-8",
    )
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
