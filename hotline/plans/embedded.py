"""The embedded provider: offers, subscriptions and service passwords on the durable
store (`plans.store_url`, SQLite by default), money on the balance ledger (`wallet`).

An order is checked (offer still offered, account active, not already held, eligible,
enough balance), charged and applied under its order id: the product row carries the
order id, and the charge is keyed by it in the ledger, so submitting the same order
again — a retry, a reconciliation after a crash — answers what happened the first time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hotline.balance.ledger import DEMO_SUBSCRIBERS, LOCAL_TZ
from hotline.base.errors import UpstreamNotFound
from hotline.plans.model import (
    Allowance,
    CurrentPlan,
    Offer,
    OrderOutcome,
    OrderReason,
    OrderRequest,
    effective_date,
)
from hotline.plans.tables import offers, passwords, products
from hotline.plans.wallet import LedgerWallet

__all__ = ["DEMO_OFFERS", "EmbeddedPlans", "PlanStore", "hash_password"]

GB = 1024**3

#: The demo catalog: three plans (from next month) and three bundles (at once).
DEMO_OFFERS: tuple[Offer, ...] = (
    Offer("plan-38", "38", "畅享38元套餐", "plan", 3800, effect="next_month",
          allowance=Allowance(10 * GB, 200 * 60, 50), change="流量10GB 通话200分钟"),
    Offer("plan-58", "58", "畅享58元套餐", "plan", 5800, effect="next_month",
          allowance=Allowance(30 * GB, 500 * 60, 100), change="流量30GB 通话500分钟"),
    Offer("plan-88", "88", "畅享88元套餐", "plan", 8800, effect="next_month",
          allowance=Allowance(60 * GB, 1000 * 60, 200), change="流量60GB 通话1000分钟"),
    Offer("addon-data-10g", "10", "10GB流量包", "addon", 1000,
          allowance=Allowance(data_bytes=10 * GB), change="流量+10GB 当月有效"),
    Offer("addon-voice-100", "5", "100分钟通话包", "addon", 500,
          allowance=Allowance(voice_seconds=100 * 60), change="通话+100分钟 当月有效"),
    Offer("addon-sms-100", "3", "100条短信包", "addon", 300,
          allowance=Allowance(sms=100), change="短信+100条 当月有效"),
)  # fmt: skip
#: Demo subscribers' plans (by the balance ledger's demo numbers) and one password.
DEMO_PLANS = {"13800138000": "plan-58", "13800138004": "plan-88"}
DEMO_PASSWORDS = {"13800138000": "246810"}
_SINCE = "2024-01-01"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$<salt hex>$<digest hex>` of a service password."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    try:
        _, salt, _digest = stored.split("$")
        return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)
    except ValueError:
        return False


def _offer(m: Any) -> Offer:
    return Offer(
        id=m["id"],
        code=m["code"],
        name=m["name"],
        kind=m["kind"],
        price_minor=int(m["price_minor"]),
        currency=m["currency"],
        effect=m["effect"],
        allowance=Allowance(int(m["data_bytes"]), int(m["voice_seconds"]), int(m["sms"])),
        change=m["change"],
        requires_password=bool(m["requires_password"]),
    )


def _offer_values(offer: Offer, sort: int, active: bool) -> dict[str, Any]:
    """An offer's columns but its id."""
    return {
        "code": offer.code,
        "name": offer.name,
        "kind": offer.kind,
        "price_minor": offer.price_minor,
        "currency": offer.currency,
        "effect": offer.effect,
        "data_bytes": offer.allowance.data_bytes,
        "voice_seconds": offer.allowance.voice_seconds,
        "sms": offer.allowance.sms,
        "change": offer.change,
        "requires_password": offer.requires_password,
        "active": active,
        "sort": sort,
    }


def _month_end(day: dt.date) -> dt.date:
    return effective_date("next_month", day) - dt.timedelta(days=1)


class PlanStore:
    """Synchronous catalog, inventory and passwords (the CLI's and the provider's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def seed_demo(self) -> None:
        """The demo catalog, plans and password, once (an existing catalog is kept).

        One transaction: workers starting together on one fresh store race here, and the
        loser's insert fails on the winner's rows, which are the same rows."""
        since = _SINCE
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(offers.c.id).limit(1)).first() is not None:
                    return
                conn.execute(
                    insert(offers),
                    [
                        {"id": o.id, **_offer_values(o, sort, True)}
                        for sort, o in enumerate(DEMO_OFFERS)
                    ],
                )
                conn.execute(
                    insert(products),
                    [
                        {
                            "msisdn": msisdn,
                            "offer_id": DEMO_PLANS.get(msisdn, "plan-38"),
                            "starts_on": since,
                            "kind": "plan",
                        }
                        for msisdn, *_ in DEMO_SUBSCRIBERS
                    ],
                )
                conn.execute(
                    insert(passwords),
                    [{"msisdn": m, "digest": hash_password(p)} for m, p in DEMO_PASSWORDS.items()],
                )
        except IntegrityError:
            return  # another worker seeded it first

    def put_offer(self, offer: Offer, *, sort: int = 0, active: bool = True) -> None:
        values = _offer_values(offer, sort, active)
        with self.engine.begin() as conn:
            done = conn.execute(update(offers).where(offers.c.id == offer.id).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(offers).values(id=offer.id, **values))

    def withdraw(self, offer_id: str) -> bool:
        """No longer offered (orders already placed stand); False if there is no such offer."""
        with self.engine.begin() as conn:
            done = conn.execute(update(offers).where(offers.c.id == offer_id).values(active=False))
        return done.rowcount == 1

    def offers(self, *, active_only: bool = True) -> list[tuple[Offer, bool]]:
        query = select(offers).order_by(offers.c.sort, offers.c.id)
        if active_only:
            query = query.where(offers.c.active.is_(True))
        with self.engine.connect() as conn:
            return [(_offer(r._mapping), bool(r.active)) for r in conn.execute(query).all()]

    def offer(self, offer_id: str) -> Offer | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(offers).where(offers.c.id == offer_id).where(offers.c.active.is_(True))
            ).first()
        return None if row is None else _offer(row._mapping)

    def set_plan(self, msisdn: str, offer_id: str, since: dt.date) -> None:
        """Put a subscriber on a plan from `since` (their other plans go)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(products).where(products.c.msisdn == msisdn).where(products.c.kind == "plan")
            )
            conn.execute(
                insert(products).values(
                    msisdn=msisdn, offer_id=offer_id, starts_on=since.isoformat(), kind="plan"
                )
            )

    def set_password(self, msisdn: str, password: str) -> None:
        digest = hash_password(password)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(passwords).where(passwords.c.msisdn == msisdn).values(digest=digest)
            )
            if done.rowcount == 0:
                conn.execute(insert(passwords).values(msisdn=msisdn, digest=digest))

    def check_password(self, msisdn: str, password: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(passwords.c.digest).where(passwords.c.msisdn == msisdn)
            ).first()
        return row is not None and _check_password(password, row[0])

    def holdings(self, msisdn: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(products).where(products.c.msisdn == msisdn).order_by(products.c.starts_on)
            ).all()
        return [dict(r._mapping) for r in rows]

    def applied(self, order_id: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(products.c.order_id).where(products.c.order_id == order_id)
            ).first()
        return row is not None

    def apply(self, request: OrderRequest, today: dt.date) -> None:
        """Add the product the order bought (a plan from its effective day)."""
        offer = request.offer
        starts = effective_date(offer.effect, today)
        with self.engine.begin() as conn:
            if offer.kind == "plan":
                # A newer pending change replaces an older one; the current plan stays.
                conn.execute(
                    delete(products)
                    .where(products.c.msisdn == request.msisdn)
                    .where(products.c.kind == "plan")
                    .where(products.c.starts_on > today.isoformat())
                )
            found = conn.execute(
                select(products.c.order_id).where(products.c.order_id == request.order_id)
            ).first()
            if found is not None:
                return  # applied before (same order id): nothing more to do
            conn.execute(
                insert(products).values(
                    msisdn=request.msisdn,
                    offer_id=offer.id,
                    starts_on=starts.isoformat(),
                    kind=offer.kind,
                    ends_on=_month_end(today).isoformat() if offer.kind == "addon" else None,
                    order_id=request.order_id,
                )
            )


def _split(
    rows: list[dict[str, Any]], today: dt.date
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """(current plan, pending plan, active add-ons) of a subscriber's product rows."""
    day = today.isoformat()
    plans = [r for r in rows if r["kind"] == "plan"]
    current = next((r for r in reversed(plans) if r["starts_on"] <= day), None)
    pending = next((r for r in plans if r["starts_on"] > day), None)
    addons = [
        r
        for r in rows
        if r["kind"] == "addon" and r["starts_on"] <= day and (r["ends_on"] or day) >= day
    ]
    return current, pending, addons


class EmbeddedPlans:
    """`PlansProvider` on the durable store and the balance ledger."""

    name = "embedded"

    def __init__(
        self,
        store: PlanStore,
        wallet: LedgerWallet,
        *,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(LOCAL_TZ).date(),
    ) -> None:
        self.store = store
        self._wallet = wallet
        self._today = today

    def _inventory(self, msisdn: str) -> CurrentPlan:
        status = self._wallet.status(msisdn)
        rows = self.store.holdings(msisdn)
        if status is None or not rows:
            raise UpstreamNotFound("no such subscriber")
        today = self._today()
        current, pending, addons = _split(rows, today)
        catalog = {o.id: o for o, _ in self.store.offers(active_only=False)}
        plan = catalog.get(current["offer_id"]) if current else None
        upcoming = catalog.get(pending["offer_id"]) if pending else None
        return CurrentPlan(
            name=plan.name if plan else "",
            monthly_fee_minor=plan.price_minor if plan else 0,
            currency=plan.currency if plan else "CNY",
            allowance=plan.allowance if plan else Allowance(),
            renews_on=effective_date("next_month", today),
            addons=tuple(catalog[a["offer_id"]].name for a in addons if a["offer_id"] in catalog),
            pending=upcoming.name if upcoming else None,
            status=status,
        )

    def _catalog(self, msisdn: str) -> list[Offer]:
        if self._wallet.status(msisdn) is None:
            raise UpstreamNotFound("no such subscriber")
        current, pending, _ = _split(self.store.holdings(msisdn), self._today())
        held = {r["offer_id"] for r in (current, pending) if r is not None}
        return [o for o, _ in self.store.offers() if o.id not in held]

    def _refuse(self, request: OrderRequest, reason: OrderReason) -> OrderOutcome:
        return OrderOutcome(request.order_id, "rejected", reason)

    def _submit(self, request: OrderRequest) -> OrderOutcome:
        today = self._today()
        offer = request.offer
        starts = effective_date(offer.effect, today)
        done = OrderOutcome(request.order_id, "completed", effective_on=starts)
        if self.store.applied(request.order_id):
            charged = self._wallet.charged(request.order_id) or 0
            return OrderOutcome(request.order_id, "completed", None, None, starts, charged)
        current = self.store.offer(offer.id)
        if current is None or (current.price_minor, current.effect) != (
            offer.price_minor,
            offer.effect,
        ):
            # Withdrawn, or repriced since the subscriber saw it: never charge another price.
            return self._refuse(request, "withdrawn")
        status = self._wallet.status(request.msisdn)
        if status is None:
            return self._refuse(request, "not_eligible")
        if status != "active":
            return self._refuse(request, "suspended")
        plan, pending, addons = _split(self.store.holdings(request.msisdn), today)
        held = {r["offer_id"] for r in (plan, pending, *addons) if r is not None}
        if current.id in held and self._wallet.charged(request.order_id) is None:
            return self._refuse(request, "already_has")
        charge = current.price_minor if current.effect == "now" else 0
        if charge > 0 or current.kind == "addon":
            until = dt.datetime.combine(_month_end(today), dt.time(23, 59, 59), LOCAL_TZ)
            answer = self._wallet.charge(
                request.order_id, request.msisdn, charge, current.allowance, until
            )
            if answer == "insufficient":
                return self._refuse(request, "insufficient_balance")
            if answer == "missing":
                return self._refuse(request, "not_eligible")
        self.store.apply(request, today)
        return OrderOutcome(request.order_id, "completed", None, None, done.effective_on, charge)

    def _lookup(self, order_id: str) -> OrderOutcome | None:
        if not self.store.applied(order_id):
            return None
        return OrderOutcome(
            order_id, "completed", charged_minor=self._wallet.charged(order_id) or 0
        )

    async def inventory(self, msisdn: str, /) -> CurrentPlan:
        return await asyncio.to_thread(self._inventory, msisdn)

    async def catalog(self, msisdn: str, /) -> Sequence[Offer]:
        return await asyncio.to_thread(self._catalog, msisdn)

    async def verify_password(self, msisdn: str, password: str, /) -> bool:
        return await asyncio.to_thread(self.store.check_password, msisdn, password)

    async def submit(self, request: OrderRequest, /) -> OrderOutcome:
        return await asyncio.to_thread(self._submit, request)

    async def lookup(self, order_id: str, msisdn: str, /) -> OrderOutcome | None:
        return await asyncio.to_thread(self._lookup, order_id)

    async def close(self) -> None:
        await asyncio.to_thread(self._wallet.close)
