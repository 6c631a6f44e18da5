"""The layout a USSD bearer without an HTTP gateway (GSUP to osmo-hlr, SMPP to a USSD
gateway) lays its screens out with: its own budget, no `CON `/`END ` prefix to reserve,
and the engine's current catalogs (built again once after a prompt reload)."""

from __future__ import annotations

from aiohttp import web

from hotline.flow.screen import Screen
from hotline.web.keys import ENGINE, SETTINGS
from ussd.budget import Limits
from ussd.page import UssdPage
from ussd.render import UssdLayout

__all__ = ["BearerLayout"]


class BearerLayout:
    """One bearer's layout of the engine's catalogs within `limits`."""

    __slots__ = ("_app", "_current", "_limits")

    def __init__(self, app: web.Application, limits: Limits) -> None:
        self._app = app
        self._limits = limits
        self._current: UssdLayout | None = None

    def get(self) -> UssdLayout:
        """The layout of the engine's catalogs as they are now."""
        catalogs = self._app[ENGINE].catalogs
        if self._current is None or self._current.catalogs is not catalogs:
            self._current = UssdLayout(
                catalogs,
                self._limits,
                session_ttl=self._app[SETTINGS].ussd.session_ttl,
                reserve=0,
            )
        return self._current

    def lay_out(self, screen: Screen) -> UssdPage:
        """`screen` as this bearer's page (the `take_turn` layout callback)."""
        return self.get().lay_out(screen)
