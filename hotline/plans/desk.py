"""The plans service the flow actions use (`hotline.flow.services.PlansService`).

`place` is the one way an order leaves: journal first (under the order id), then one
submission, then status polls until the order is final or the answer window closes.
Whatever happens in between — a timeout after the upstream accepted, an answer that
does not validate, a worker killed mid-call — the journal row stays *not final* and is
reconciled: a poll by the order id (`externalId`) before anyone is told it failed, a
resubmission under the same id if the upstream never saw it, and only when it still
has not after `reconcile_give_up`, "failed" with an SMS saying nothing was charged.
A final order gets exactly one SMS receipt (`Journal.claim_receipt`, and the outbox's
`dedupe` on the order id besides), and a completed one drops the subscriber's cached
balance so every channel shows the new figures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hotline.balance.msisdn import canonical_msisdn
from hotline.base.config import PlansSettings
from hotline.base.errors import UpstreamError, UpstreamNotFound
from hotline.base.values import Date, Money, Text, Value
from hotline.flow.services import MessagesService
from hotline.plans.http import NotPlaced
from hotline.plans.ids import order_id
from hotline.plans.journal import Journal, JournalRow
from hotline.plans.model import CurrentPlan, Offer, OrderOutcome, OrderRequest
from hotline.plans.provider import PlansProvider
from hotline.resilience.faults import BulkheadFull, CircuitOpen

__all__ = ["Forgetful", "Placed", "PlansDesk"]

log = logging.getLogger(__name__)

RECEIPT_DONE = "plan.receipt_done"
RECEIPT_FAILED = "plan.receipt_failed"
#: Catalog keys the desk sends by SMS (`flows check` cannot see them in a flow).
RECEIPT_KEYS = (RECEIPT_DONE, RECEIPT_FAILED)


class Forgetful(Protocol):
    """A cache that can drop one subscriber's entry (the balance service's)."""

    def forget(self, key: str, /) -> None: ...


@dataclass(frozen=True, slots=True)
class Placed:
    """What `place` can tell the subscriber now: the outcome, and whether it is final."""

    outcome: OrderOutcome
    pending: bool  # not final within the answer window: "已受理，结果将短信通知"


def _number(msisdn: str) -> str:
    """The provider's form of a number (`13800138000`); not a number: not found."""
    try:
        return canonical_msisdn(msisdn)
    except ValueError as exc:
        raise UpstreamNotFound("not a phone number") from exc


def _outcome(row: JournalRow) -> OrderOutcome:
    return OrderOutcome(
        row.id,
        row.state,  # type: ignore[arg-type]
        row.reason,  # type: ignore[arg-type]
        row.upstream_id,
        row.effective_on,
        row.charged_minor,
    )


class PlansDesk:
    """Plans, offers and orders for the actions (see the module docstring)."""

    def __init__(
        self,
        provider: PlansProvider,
        journal: Journal,
        settings: PlansSettings,
        *,
        secret: str,
        messages: MessagesService | None = None,
        balance: Forgetful | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.journal = journal
        self.settings = settings
        self._secret = secret
        self.messages = messages
        self.balance = balance
        self._clock = clock

    # -- reads ---------------------------------------------------------------------------

    @property
    def require_password(self) -> bool:
        return self.settings.require_password

    @property
    def password_tries(self) -> int:
        return self.settings.password_tries

    @property
    def page_size(self) -> int:
        return self.settings.page_size

    async def current(self, msisdn: str, /) -> CurrentPlan:
        return await self.provider.inventory(_number(msisdn))

    async def offers(self, msisdn: str, /) -> Sequence[Offer]:
        return await self.provider.catalog(_number(msisdn))

    async def offer(self, msisdn: str, offer_id: str, /) -> Offer | None:
        """The offer as the provider prices it now (None: withdrawn or not open to them)."""
        return next((o for o in await self.offers(msisdn) if o.id == offer_id), None)

    async def verify_password(self, msisdn: str, password: str, /) -> bool:
        return await self.provider.verify_password(_number(msisdn), password)

    def order_id(self, msisdn: str, nonce: str, offer_id: str) -> str:
        return order_id(self._secret, _number(msisdn), nonce, offer_id)

    async def order(self, msisdn: str, oid: str, /) -> JournalRow | None:
        """The journalled order `oid` if it is this subscriber's (anyone else's: None)."""
        row = await asyncio.to_thread(self.journal.get, oid)
        return row if row is not None and row.msisdn == _number(msisdn) else None

    # -- placing an order ----------------------------------------------------------------

    async def place(
        self, msisdn: str, offer_id: str, price_minor: int, oid: str, language: str
    ) -> Placed:
        """Submit the order `oid` for the offer quoted at `price_minor` once, and wait for
        it within the answer window. An order id seen before is that order, whatever the
        catalog says now; a new one is checked against the offer as priced now."""
        ends = self._clock() + self.settings.answer_window
        msisdn = _number(msisdn)
        seen = await asyncio.to_thread(self.journal.get, oid)
        if seen is None:
            offer = await self.offer(msisdn, offer_id)
            if offer is None or offer.price_minor != price_minor:
                return Placed(OrderOutcome(oid, "rejected", "withdrawn"), pending=False)
        else:
            offer = self._journalled_offer(seen)
        request = OrderRequest(oid, msisdn, offer)
        row, created = await asyncio.to_thread(self.journal.begin, request, language)
        if row.final:
            await self._finish(row)
            return Placed(_outcome(row), pending=False)
        outcome: OrderOutcome | None = None
        if not created:
            outcome = await self._ask(request)  # a retry of a confirmation: what happened?
        if outcome is None:
            try:
                outcome = await self.provider.submit(request)
            except (NotPlaced, CircuitOpen, BulkheadFull) as exc:
                log.info("order not placed: %s", type(exc).__name__)
                outcome = OrderOutcome(oid, "failed", "unavailable")
            except UpstreamError as exc:
                # Ambiguous: it may have been accepted. Poll before telling anyone.
                log.info("order submission ambiguous: %s", type(exc).__name__)
        while (outcome is None or not outcome.final) and self._clock() < ends:
            await asyncio.sleep(min(self.settings.poll_interval, max(ends - self._clock(), 0)))
            outcome = await self._ask(request) or outcome
        if outcome is None:
            await asyncio.to_thread(self.journal.polled, oid, self.settings.poll_interval)
            return Placed(_outcome(row), pending=True)
        row = await asyncio.to_thread(
            self.journal.record, outcome, next_poll_in=self.settings.poll_interval
        )
        if not row.final:
            return Placed(_outcome(row), pending=True)
        if row.state != "completed":
            # Told on the screen at once: an SMS about a refusal would only repeat it.
            await asyncio.to_thread(self.journal.claim_receipt, oid)
        await self._finish(row)
        return Placed(_outcome(row), pending=False)

    @staticmethod
    def _journalled_offer(row: JournalRow) -> Offer:
        """The offer as it was ordered (its price then, not now)."""
        return Offer(
            row.offer_id,
            "",
            row.offer_name,
            "plan" if row.effect == "next_month" else "addon",
            row.price_minor,
            row.currency,
            "next_month" if row.effect == "next_month" else "now",
        )

    async def _ask(self, request: OrderRequest) -> OrderOutcome | None:
        try:
            return await self.provider.lookup(request.order_id, request.msisdn)
        except UpstreamError as exc:
            log.info("order status poll failed: %s", type(exc).__name__)
            return None

    async def _finish(self, row: JournalRow) -> None:
        """After a final state: fresh balances, and the one receipt."""
        if row.state == "completed" and self.balance is not None:
            self.balance.forget(row.msisdn)
        if self.messages is None or not await asyncio.to_thread(self.journal.claim_receipt, row.id):
            return
        values: dict[str, Value] = {
            "order": Text(row.id),
            "offer": Text(row.offer_name),
            "price": Money(row.price_minor, row.currency),
        }
        if row.effective_on is not None:
            values["date"] = Date(row.effective_on)
        key = RECEIPT_DONE if row.state == "completed" else RECEIPT_FAILED
        try:
            await self.messages.send(
                row.msisdn, key, values, row.language, kind="receipt", dedupe=row.id
            )
        except Exception:
            log.exception("plan receipt not queued; the next reconciliation tries again")
            await asyncio.to_thread(self.journal.unclaim_receipt, row.id)

    # -- reconciliation ------------------------------------------------------------------

    async def reconcile_once(self) -> int:
        """Poll every due order once (resubmitting one the upstream never saw); the number
        of orders that became final."""
        settled = 0
        interval = self.settings.reconcile_interval
        for row in await asyncio.to_thread(self.journal.due):
            offer = self._journalled_offer(row)
            request = OrderRequest(row.id, row.msisdn, offer)
            outcome = await self._ask(request)
            age = self._clock() - row.created_at
            if outcome is None and age > self.settings.reconcile_give_up:
                outcome = OrderOutcome(row.id, "failed", "not_submitted")
            elif outcome is None and age > self.settings.answer_window + self.settings.deadline:
                # Never seen upstream (the worker died before sending, or it was lost):
                # the subscriber confirmed it, and the same id cannot be placed twice.
                full = await self._catalog_offer(row) or offer
                try:
                    outcome = await self.provider.submit(OrderRequest(row.id, row.msisdn, full))
                except UpstreamError as exc:
                    log.info("order resubmission failed: %s", type(exc).__name__)
            if outcome is None:
                await asyncio.to_thread(self.journal.polled, row.id, interval)
                continue
            row = await asyncio.to_thread(self.journal.record, outcome, next_poll_in=interval)
            if row.final:
                settled += 1
                await self._finish(row)
        for row in await asyncio.to_thread(self.journal.unnotified):
            await self._finish(row)
        return settled

    async def _catalog_offer(self, row: JournalRow) -> Offer | None:
        try:
            return await self.offer(row.msisdn, row.offer_id)
        except UpstreamError:
            return None

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile every `reconcile_interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                async with asyncio.timeout(self.settings.reconcile_interval):
                    await stop.wait()
                return
            except TimeoutError:
                pass
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("plan reconciliation failed; trying again")

    async def close(self) -> None:
        await self.provider.close()


def today_in(zone: dt.tzinfo) -> dt.date:
    return dt.datetime.now(zone).date()
