"""Channels are plug-ins: found through entry points, selected by settings, mounted by
the app factory without the core importing any of them."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.base.errors import ConfigError
from hotline.cli import main
from hotline.web import channels
from hotline.web.app import create_app
from hotline.web.channels import ChannelPlugin
from hotline.web.keys import CHANNELS
from tests.web.conftest import AT, PHONE, at_form

ROOT = Path(__file__).resolve().parents[2]
CHANNEL_PACKAGES = {"ussd", "ivr", "sms", "api"}

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def _imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_core_imports_no_channel() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & CHANNEL_PACKAGES)
        for path in sorted((ROOT / "hotline").rglob("*.py"))
        if _imported_packages(path) & CHANNEL_PACKAGES
    }
    assert offenders == {}


def test_admin_no_longer_imports_the_app_factory() -> None:
    """The circle admin → app → ops → admin is gone: admin loads without the factory."""
    code = "import sys, hotline.web.admin; print('hotline.web.app' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_installed_channels_are_the_entry_points() -> None:
    found = channels.installed()
    assert list(found) == ["api", "ivr", "sms", "ussd"]
    assert all(isinstance(plugin, ChannelPlugin) for plugin in found.values())
    assert "ussd.more" in found["ussd"].prompt_keys
    assert "voice.option" in found["ivr"].prompt_keys


async def test_every_installed_channel_is_mounted_by_default(
    aiohttp_client: MakeClient, settings_factory: Any
) -> None:
    app = create_app(settings_factory())
    assert [plugin.name for plugin in app[CHANNELS]] == ["api", "ivr", "sms", "ussd"]
    client = await aiohttp_client(app)
    assert (await client.post(AT, data=at_form("ch-1"))).status == 200
    call = {"CallSid": "CA1", "From": PHONE, "To": "+8610086", "CallStatus": "ringing"}
    response = await client.post("/ivr/twilio/voice", data=call)
    assert response.status == 200
    assert response.content_type == "application/xml"


async def test_the_channels_setting_selects_what_is_mounted(
    aiohttp_client: MakeClient, settings_factory: Any
) -> None:
    client = await aiohttp_client(create_app(settings_factory(channels=["ussd"])))
    response = await client.post(AT, data=at_form("ch-2"))
    assert response.status == 200
    assert (await response.text()).startswith("CON ")
    call = {"CallSid": "CA2", "From": PHONE, "To": "+8610086", "CallStatus": "ringing"}
    assert (await client.post("/ivr/twilio/voice", data=call)).status == 404
    assert [plugin.name for plugin in client.app[CHANNELS]] == ["ussd"]


def test_an_unknown_channel_is_a_one_line_config_error(settings_factory: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(settings_factory(channels=["ussd", "fax"]))
    assert str(caught.value) == (
        "config channels (HOTLINE_CHANNELS): unknown channel 'fax' (installed: api, ivr, sms, ussd)"
    )


def test_the_cli_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HOTLINE_CHANNELS", '["fax"]')
    assert main(["flows", "check"]) == 2
    assert capsys.readouterr().err == (
        "hotline: config channels (HOTLINE_CHANNELS): unknown channel 'fax' "
        "(installed: api, ivr, sms, ussd)\n"
    )


# A channel from another distribution: an entry point and a module, nothing in the core.
_ECHO = """
from aiohttp import web

from hotline.web.channels import ChannelPlugin
from hotline.web.guards import Gateway
from hotline.web.keys import ENGINE


async def _echo(request: web.Request) -> web.Response:
    languages = request.app[ENGINE].catalogs.languages
    return web.json_response({"languages": list(languages)})


def _setup(app: web.Application) -> None:
    app.router.add_get("/echo/ping", _echo, name="echo-ping")


def _gateways(settings):
    return [Gateway(prefix="/echo", channel="echo", dialect="plain", path_token="t" * 16)]


PLUGIN = ChannelPlugin(name="echo", setup=_setup, gateways=_gateways, prompt_keys=("echo.hi",))
"""


@pytest.fixture
def echo_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "echo_channel.py").write_text(textwrap.dedent(_ECHO), encoding="utf-8")
    info = tmp_path / "echo_channel-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-channel\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hotline.channels]\necho = echo_channel:PLUGIN\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    channels.installed.cache_clear()
    yield
    channels.installed.cache_clear()
    sys.modules.pop("echo_channel", None)


async def test_a_channel_from_another_package_mounts_with_its_gateway(
    echo_channel: None, aiohttp_client: MakeClient, settings_factory: Any
) -> None:
    assert list(channels.installed()) == ["api", "echo", "ivr", "sms", "ussd"]
    app = create_app(settings_factory(channels=["ussd", "echo"]))
    assert channels.prompt_keys(app[CHANNELS]) == (
        "ussd.more",
        "ussd.back",
        "ussd.prev",
        "ussd.home",
        "ussd.page",
        "echo.hi",
    )
    client = await aiohttp_client(app)
    # Its gateway guards it: only the path-token alias gets through.
    assert (await client.get("/echo/ping")).status == 403
    response = await client.get(f"/echo/{'t' * 16}/ping")
    assert response.status == 200
    assert await response.json() == {"languages": ["zh-CN", "en"]}


def test_flows_check_requires_a_mounted_channels_prompt_keys(
    echo_channel: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HOTLINE_CHANNELS", '["ussd", "echo"]')
    assert main(["flows", "check"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "prompts/en.yaml:1: prompt 'echo.hi' is required [missing-prompt]",
        "prompts/zh-CN.yaml:1: prompt 'echo.hi' is required [missing-prompt]",
        "2 problem(s) in 3 flow file(s)",
    ]


def test_the_command_line_parses_without_loading_a_channel() -> None:
    """`hotline prompts …` comes from the voice channel's `hotline.commands` entry point,
    which loads `ivr.cli` alone, not the channel's routes or speech machinery."""
    code = (
        "import sys; from hotline.cli import build_parser; build_parser();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ussd', 'ivr')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "['ivr', 'ivr.cli']"


def test_prompts_is_a_subcommand_of_hotline(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["prompts", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hotline prompts")
    assert "render every static voice prompt ahead of time" in " ".join(out.split())
