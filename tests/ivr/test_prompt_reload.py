"""A voice call after a prompt reload hears the new wording (the speaker follows the
engine's catalogs); SIGHUP runs the same `reload_flows`."""

from __future__ import annotations

from pathlib import Path

from hotline.web.admin import reload_flows
from hotline.web.app import create_app
from tests.ivr.test_http import Call, MakeClient, make_settings
from tests.web.test_prompt_reload import copy_content, edit


async def test_a_call_after_a_reload_hears_the_new_prompts(
    aiohttp_client: MakeClient,
    redis_url: str,
    tmp_path: Path,
    audio_dir: Path,
) -> None:
    flows, prompts = copy_content(tmp_path)
    settings = make_settings(tmp_path, redis_url, audio_dir).model_copy(
        update={"flows_dir": flows, "prompts_dir": prompts}
    )
    client = await aiohttp_client(create_app(settings))
    first = Call(client, "CA" + "a" * 32)
    await first.start()
    assert first.spoken[0] == "话费查询"
    edit(prompts / "zh-CN.yaml", "    title: 话费查询\n", "    title: 欢迎致电话费查询\n")
    await reload_flows(client.app)  # what SIGHUP runs
    second = Call(client, "CA" + "b" * 32)
    await second.start()
    assert second.spoken[0] == "欢迎致电话费查询"
