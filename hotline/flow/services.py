"""The services an action may use, handed in through `ActionContext.services` (DESIGN.md §13).

An action never reaches for a module-level client or an app key: whatever it needs is a
typed, optional field here, filled by the app factory (`hotline.web.app`) and absent
(None) where a deployment has no such service, in which case the action answers its
`error` outcome. Every service that leaves the process is wrapped in the same resilience
layers (`hotline.resilience`).

`http` is the declared endpoints (`http_endpoints`, `hotline.endpoints`) that the
`http.request` action calls. Added by later issues, each as one more optional field with
its protocol here: `messages` (outgoing SMS), `reminders`, `plans` (plans and orders).
Subscriber preferences are not a service: an action sets `ctx.new_language` and the
engine stores it with the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hotline.balance.model import BalanceSnapshot

__all__ = ["BalanceService", "HttpAnswer", "HttpService", "Services"]


class BalanceService(Protocol):
    """One subscriber's balances (the balance provider inside its resilience layers)."""

    @property
    def fresh_for(self) -> float:
        """Seconds an answer counts as current; older data is shown with its time."""
        ...

    async def fetch(self, subscriber: str, /) -> BalanceSnapshot:
        """The snapshot, or one of `hotline.base.errors`' upstream errors."""
        ...


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What a declared endpoint answered: its HTTP status and its JSON body, decoded."""

    status: int
    body: Any


class HttpService(Protocol):
    """The declared endpoints, each inside the resilience layers (`hotline.endpoints`)."""

    @property
    def names(self) -> frozenset[str]:
        """The configured endpoint names."""
        ...

    async def call(
        self, endpoint: str, subscriber: str, payload: Mapping[str, Any], /
    ) -> HttpAnswer:
        """POST `payload` as JSON for `subscriber`; the answer (any status with a JSON
        body), or one of `hotline.base.errors`' upstream errors."""
        ...


@dataclass(frozen=True, slots=True)
class Services:
    """Every service an action may call; None where the deployment has none."""

    balance: BalanceService | None = None
    #: Where `call.transfer` hands a call (`ivr.agent_number`); None: no agents.
    agent_number: str | None = None
    #: The declared `http_endpoints` (`http.request`); None: none configured.
    http: HttpService | None = None
    # Added by later issues: messages, reminders, plans (see the module docstring).
