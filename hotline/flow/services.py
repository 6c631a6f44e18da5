"""The services an action may use, handed in through `ActionContext.services` (DESIGN.md §13).

An action never reaches for a module-level client or an app key: whatever it needs is a
typed, optional field here, filled by the app factory (`hotline.web.app`) and absent
(None) where a deployment has no such service, in which case the action answers its
`error` outcome. Every service that leaves the process is wrapped in the same resilience
layers (`hotline.resilience`).

`messages` queues outgoing SMS in the durable outbox (`hotline.store.outbox`), which the
SMS channel delivers. Added by later issues, each as one more optional field with its
protocol here: `reminders`, `plans` (plans and orders), `http` (declared endpoints).
Subscriber preferences are not a service: an action sets `ctx.new_language` and the
engine stores it with the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from hotline.balance.model import BalanceSnapshot
    from hotline.base.values import Value

__all__ = ["BalanceService", "MessagesService", "Services"]


class BalanceService(Protocol):
    """One subscriber's balances (the balance provider inside its resilience layers)."""

    @property
    def fresh_for(self) -> float:
        """Seconds an answer counts as current; older data is shown with its time."""
        ...

    async def fetch(self, subscriber: str, /) -> BalanceSnapshot:
        """The snapshot, or one of `hotline.base.errors`' upstream errors."""
        ...


class MessagesService(Protocol):
    """Outgoing SMS: queued durably, worded and sent by the SMS channel's sender."""

    async def send(
        self,
        subscriber: str,
        key: str,
        values: Mapping[str, Value],
        language: str,
        *,
        kind: Literal["service", "otp", "receipt"] = "service",
        dedupe: str | None = None,
    ) -> int:
        """Queue the catalog sentence `key` with `values` for `subscriber`; the outbox id.
        `dedupe` (e.g. an order id) makes a repeated call queue nothing."""
        ...


@dataclass(frozen=True, slots=True)
class Services:
    """Every service an action may call; None where the deployment has none."""

    balance: BalanceService | None = None
    #: Where `call.transfer` hands a call (`ivr.agent_number`); None: no agents.
    agent_number: str | None = None
    #: Outgoing SMS (the outbox); None where the app has none.
    messages: MessagesService | None = None
    # Added by later issues: reminders, plans, http (see the module docstring).
