"""Channel plug-ins: every channel (`ussd`, `ivr`, later `sms`, `api`) registers itself.

A channel package holds one `ChannelPlugin` and names it in the `hotline.channels`
entry-point group of its distribution (`pyproject.toml`); a channel's own `hotline`
subcommands go in `hotline.commands`, so the command line parses without loading any
channel:

    [project.entry-points."hotline.channels"]
    ivr = "ivr.channel:PLUGIN"

    [project.entry-points."hotline.commands"]
    prompts = "ivr.cli:register"

The core finds them with `importlib.metadata` and imports no channel by name:
`create_app` mounts the plug-ins the `channels` setting selects (default: every one
installed) and guards their routes with the gateways they describe; `flows check` and a
flow reload take the prompt keys and screen measures of the same plug-ins. Entry points
are read once per process. This module imports no aiohttp, for the command line's sake.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from hotline.base.errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

    from hotline.base.config import Settings
    from hotline.flow.check import ScreenCheck
    from hotline.i18n.catalog import CatalogSet
    from hotline.web.guards import Gateway

__all__ = [
    "COMMANDS_GROUP",
    "ENTRY_POINT_GROUP",
    "ChannelPlugin",
    "add_commands",
    "gateways",
    "installed",
    "mount",
    "prompt_keys",
    "screen_checks",
    "selected",
]

ENTRY_POINT_GROUP = "hotline.channels"
COMMANDS_GROUP = "hotline.commands"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class ChannelPlugin:
    """What one channel tells the core about itself.

    `setup(app)` runs in `create_app` after the core's resources (settings, catalogs,
    sessions, balance, engine) are in place as cleanup contexts: it adds the channel's
    routes, its own cleanup contexts and startup work. `gateways(settings)` describes how
    its routes are guarded (authentication, limits, the polite sentence a guard answers
    with). `prompt_keys` are the catalog keys it says by itself, required in every
    language. `screen_checks(catalogs, settings)` measures flow screens for `flows check`
    by the channel's own rules (None: nothing to measure).
    """

    name: str
    setup: Callable[[web.Application], None]
    gateways: Callable[[Settings], Sequence[Gateway]]
    prompt_keys: tuple[str, ...] = ()
    screen_checks: Callable[[CatalogSet, Settings], ScreenCheck] | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"channel name {self.name!r}: expected 1-32 of a-z 0-9 _")


@cache
def installed() -> Mapping[str, ChannelPlugin]:
    """Every channel plug-in installed in this environment, by name (sorted).

    A plug-in that does not load or is not a `ChannelPlugin` named like its entry point
    is a packaging mistake: `ConfigError` naming it.
    """
    found: dict[str, ChannelPlugin] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        plugin = point.load()
        if not isinstance(plugin, ChannelPlugin):
            raise ConfigError(
                f"channel plug-in {point.name} ({point.value}): expected a ChannelPlugin, "
                f"got {type(plugin).__name__}"
            )
        if plugin.name != point.name:
            raise ConfigError(
                f"channel plug-in {point.name} ({point.value}): its name is {plugin.name!r}"
            )
        if point.name in found and found[point.name] is not plugin:
            raise ConfigError(f"channel plug-in {point.name}: installed twice")
        found[point.name] = plugin
    return dict(sorted(found.items()))


def selected(settings: Settings) -> tuple[ChannelPlugin, ...]:
    """The plug-ins `settings.channels` names (in that order), or every installed one.

    An unknown name is a one-line `ConfigError` naming the key.
    """
    available = installed()
    names = settings.channels if settings.channels is not None else tuple(available)
    for name in names:
        if name not in available:
            known = ", ".join(available) or "none"
            raise ConfigError(
                f"config channels (HOTLINE_CHANNELS): unknown channel {name!r} (installed: {known})"
            )
    return tuple(available[name] for name in dict.fromkeys(names))


def gateways(channels: Sequence[ChannelPlugin], settings: Settings) -> list[Gateway]:
    """Every gateway of these channels, for the guard and the access log."""
    return [gateway for channel in channels for gateway in channel.gateways(settings)]


def mount(app: web.Application, channels: Sequence[ChannelPlugin]) -> None:
    """Let each channel set itself up on `app`, and remember which ones did
    (`hotline.web.keys.CHANNELS`)."""
    from hotline.web.keys import CHANNELS

    app[CHANNELS] = tuple(channels)
    for channel in channels:
        channel.setup(app)


def prompt_keys(channels: Sequence[ChannelPlugin]) -> tuple[str, ...]:
    """Catalog keys these channels need in every language, each once."""
    return tuple(dict.fromkeys(key for channel in channels for key in channel.prompt_keys))


def screen_checks(
    channels: Sequence[ChannelPlugin], catalogs: CatalogSet, settings: Settings
) -> tuple[ScreenCheck, ...]:
    """Each channel's measure of flow screens, built for these catalogs and settings."""
    return tuple(
        channel.screen_checks(catalogs, settings)
        for channel in channels
        if channel.screen_checks is not None
    )


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the channels' subcommands to `hotline`: each `hotline.commands` entry point is
    a `register(subparsers)` adding parsers whose `func(args) -> int` runs the command."""
    for point in sorted(entry_points(group=COMMANDS_GROUP), key=lambda p: p.name):
        register: Callable[[argparse._SubParsersAction[Any]], None] = point.load()
        register(sub)
