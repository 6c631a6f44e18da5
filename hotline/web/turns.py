"""One turn of any channel: step the engine, lay the screen out, save, hand back.

Every channel's handler has the same shape — its dialect parses the request into a
`ChannelEvent`, `take_turn` steps the engine and lets the channel's renderer lay the
screen out, the dialect writes the reply. Trouble on our side (the session store, a
bug) becomes the engine's apology screen laid out by the same renderer: a subscriber
always gets a sentence, the gateway never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from aiohttp import web

from hotline.base.errors import SessionStoreUnavailable
from hotline.flow.events import ChannelEvent
from hotline.flow.screen import Screen, Turn
from hotline.web.keys import ENGINE, PSEUDONYM, TURN_OBSERVERS

__all__ = ["Laid", "take_turn"]

log = logging.getLogger(__name__)


class Laid(Protocol):
    """What a renderer made of a screen: its page count, and whether the reply closes
    the conversation (`END`, a hang-up)."""

    @property
    def pages(self) -> int: ...

    @property
    def ends(self) -> bool: ...


L = TypeVar("L", bound=Laid)


async def take_turn(
    app: web.Application, event: ChannelEvent, lay_out: Callable[[Screen], L]
) -> tuple[Screen, L]:
    """Step the session for `event`, lay its screen out and save it."""
    engine = app[ENGINE]
    try:
        turn = await engine.step(event)
        laid = lay_out(turn.screen)
        await engine.commit(turn, laid.pages, laid.ends)
        _observe(app, event, turn, laid.ends)
        return turn.screen, laid
    except SessionStoreUnavailable as exc:
        log.warning("%s: session store unavailable (%s); apologized", event.channel, exc)
    except Exception:
        # A pseudonym, never the number itself (DESIGN.md §10).
        log.exception(
            "%s: turn failed for subscriber %s", event.channel, app[PSEUDONYM](event.subscriber)
        )
    screen = engine.apology()
    apology = lay_out(screen)
    _observe(app, event, Turn(screen, ("apology",)), apology.ends)
    return screen, apology


def _observe(app: web.Application, event: ChannelEvent, turn: Turn, ends: bool) -> None:
    """Tell the optional turn observers (none unless the simulator or analytics is on)."""
    for observer in app.get(TURN_OBSERVERS, ()):
        try:
            observer(event, turn, ends)
        except Exception:
            log.exception("a turn observer failed; the turn stands")
