"""The services an action may use, handed in through `ActionContext.services` (DESIGN.md §13).

An action never reaches for a module-level client or an app key: whatever it needs is a
typed, optional field here, filled by the app factory (`hotline.web.app`) and absent
(None) where a deployment has no such service, in which case the action answers its
`error` outcome. Every service that leaves the process is wrapped in the same resilience
layers (`hotline.resilience`).

`messages` queues outgoing SMS in the durable outbox (`hotline.store.outbox`), which the
SMS channel delivers. `http` is the declared endpoints (`http_endpoints`,
`hotline.endpoints`) that the `http.request` action calls. `reminders` is top-up
reminders (`hotline.reminders`), `plans` plans, offers and orders (`hotline.plans`).
Subscriber preferences are not a service: an action sets `ctx.new_language` and the
engine stores it with the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hotline.balance.model import BalanceSnapshot
    from hotline.base.values import Value
    from hotline.plans.desk import Placed
    from hotline.plans.journal import JournalRow
    from hotline.plans.model import CurrentPlan, Offer

__all__ = [
    "BalanceService",
    "HttpAnswer",
    "HttpService",
    "MessagesService",
    "PlansService",
    "RemindersService",
    "Services",
]


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


class RemindersService(Protocol):
    """Top-up reminders (`hotline.reminders`): opt in with a threshold, opt out.

    `channel` is where the subscriber gave or withdrew consent (`ussd`, `ivr`, `sms`,
    `api`); it is kept with the time as the proof of consent."""

    @property
    def thresholds(self) -> tuple[int, ...]:
        """The whole amounts (元) a subscriber may choose."""
        ...

    @property
    def keyword_off(self) -> str:
        """The SMS keyword that opts out (`QXTX`), as the confirmation says it."""
        ...

    def choices(self, rule: str) -> tuple[int, ...]:
        """What may be chosen for `rule` (`balance.low`: 元, `data.low`/`voice.low`:
        percent left, `bundle.expiry`: days ahead); ValueError for an unknown rule."""
        ...

    async def subscribe(
        self,
        subscriber: str,
        threshold: int,
        /,
        *,
        channel: str,
        language: str,
        rule: str = "balance.low",
    ) -> None:
        """Opt in (or change the threshold); ValueError for a threshold not offered."""
        ...

    async def unsubscribe(self, subscriber: str, /, *, channel: str) -> bool:
        """Opt out of every reminder; False if the subscriber had none."""
        ...

    async def rules_of(self, subscriber: str, /) -> dict[str, int]:
        """The active rules and their thresholds (元, percent, days)."""
        ...

    async def threshold_of(self, subscriber: str, /) -> int | None:
        """The subscriber's active threshold (元), or None."""
        ...


class PlansService(Protocol):
    """Plans, offers and orders (`hotline.plans.desk.PlansDesk`): prices and eligibility
    come from the provider; `place` submits one order per order id (see `hotline.plans`).
    The API's `GET /me/offers` and `POST /me/orders` (Idempotency-Key → `order_id`'s
    nonce) are meant to use this same protocol."""

    @property
    def require_password(self) -> bool: ...
    @property
    def password_tries(self) -> int: ...
    @property
    def page_size(self) -> int: ...

    async def current(self, msisdn: str, /) -> CurrentPlan:
        """The current plan, or an upstream error (`UpstreamNotFound`: unknown number)."""
        ...

    async def offers(self, msisdn: str, /) -> Sequence[Offer]:
        """The offers open to the subscriber, in display order."""
        ...

    async def offer(self, msisdn: str, offer_id: str, /) -> Offer | None:
        """One offer as priced now; None if withdrawn or not open to them."""
        ...

    async def verify_password(self, msisdn: str, password: str, /) -> bool: ...

    def order_id(self, msisdn: str, nonce: str, offer_id: str) -> str:
        """The order id of one confirmation (the upstream's idempotency key)."""
        ...

    async def order(self, msisdn: str, oid: str, /) -> JournalRow | None:
        """The journalled order `oid` if it is this subscriber's, else None (the API's
        `GET /me/orders/{id}`)."""
        ...

    async def place(
        self, msisdn: str, offer_id: str, price_minor: int, oid: str, language: str
    ) -> Placed:
        """Submit the order once (an offer repriced or withdrawn since the quote is
        refused), wait within the answer window, journal it."""
        ...


@dataclass(frozen=True, slots=True)
class Services:
    """Every service an action may call; None where the deployment has none."""

    balance: BalanceService | None = None
    #: Where `call.transfer` hands a call (`ivr.agent_number`); None: no agents.
    agent_number: str | None = None
    #: Outgoing SMS (the outbox); None where the app has none.
    messages: MessagesService | None = None
    #: The declared `http_endpoints` (`http.request`); None: none configured.
    http: HttpService | None = None
    #: Top-up reminders (`hotline.reminders`); None: reminders are off.
    reminders: RemindersService | None = None
    #: Plans, offers and orders (`hotline.plans`); None: no plan change here.
    plans: PlansService | None = None
