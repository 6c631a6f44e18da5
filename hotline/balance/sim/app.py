"""The reference billing simulator: an aiohttp app serving both balance dialects.

- `POST /balance-query/v1/query` ("balance-query v1", HMAC-signed, problem+json errors);
- `GET /tmf-api/prepayBalanceManagement/v4/bucket?logicalResource.id=|relatedParty.id=`;
- `POST /v1/topup` (recharge cards, HMAC-signed: `hotline.balance.sim.topup`);
- admin: `PUT /_sim/subscribers/{msisdn}`, `PUT /_sim/cards/{card}`,
  `POST|DELETE /_sim/faults`, `GET /_sim/stats`, `POST /_sim/reset`.

Faults (reference §7.5) come from `FaultTable`. Stats count calls per subscriber, the most
requests in flight at once, and attempts per `X-Request-Id`, so tests can prove
coalescing, the bulkhead and the retry cap. `/_sim/stats` is unauthenticated, so its
per-subscriber counts are keyed by `stats_key(secret, msisdn)`, a pseudonym under the
simulator's signing secret: whoever holds the secret (the tests, the bench) can find a
number's count; nobody else learns which numbers were looked up. Clock and randomness are
injected. The simulator keeps no access log: TMF654 puts the MSISDN in the URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from hotline.balance.http import TMF654_PATH, V1_PATH
from hotline.balance.ledger import LOCAL_TZ
from hotline.balance.msisdn import canonical_msisdn
from hotline.balance.signing import (
    canonical_query,
    parse_authorization,
    string_to_sign,
    verify_signature,
)
from hotline.balance.sim.bodies import BODY_FAULTS, mutate_tmf, mutate_v1
from hotline.balance.sim.events import emit_balance
from hotline.balance.sim.events import install as install_events
from hotline.balance.sim.faults import FaultTable
from hotline.balance.sim.orders import install_orders
from hotline.balance.sim.store import SimSubscriber, load_seed, subscriber_from_doc
from hotline.balance.sim.topup import TOPUP_PATH, SimCard, card_from_doc, demo_cards, parse_topup
from hotline.base.privacy import Pseudonymizer

__all__ = ["SIM", "Simulator", "create_sim_app", "stats_key"]

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")  # ASCII: `\d` admits ١ and １
_TITLES = {
    400: ("INVALID_REQUEST", False),
    401: ("UNAUTHENTICATED", False),
    403: ("FORBIDDEN", False),
    404: ("SUBSCRIBER_NOT_FOUND", False),
    409: ("BALANCE_NOT_AVAILABLE", False),
    429: ("RATE_LIMITED", True),
    500: ("INTERNAL_ERROR", True),
    502: ("UPSTREAM_ERROR", True),
    503: ("UNAVAILABLE", True),
    504: ("UPSTREAM_TIMEOUT", True),
}
_SKEW_MS = 300_000
_TIMESTAMP = re.compile(r"[0-9]{1,16}")  # ASCII ms: str.isdigit admits ², which int() refuses
_AMOUNT = re.compile(r'("amount(?:_minor)?"):\s*-?[0-9.]+')


def _problem(status: int, code: str | None = None, retry_after: int | None = None) -> web.Response:
    default, retryable = _TITLES.get(status, ("ERROR", status >= 500))
    code = code or default
    body = {
        "type": f"urn:balance-query:error:{code}",
        "title": code.replace("_", " ").lower(),
        "status": status,
        "code": code,
        "retryable": retryable,
    }
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(
        status=status,
        text=json.dumps(body),
        headers=headers,
        content_type="application/problem+json",
    )


def _json(
    text: str | bytes,
    status: int = 200,
    content_type: str = "application/json",
    charset: str | None = "utf-8",
) -> web.Response:
    body = text.encode("utf-8") if isinstance(text, str) else text
    response = web.Response(status=status, body=body)
    response.headers["Content-Type"] = content_type + (f"; charset={charset}" if charset else "")
    return response


def stats_key(secret: str, msisdn: str) -> str:
    """The key of a number's call count in `/_sim/stats`: its pseudonym under `secret`."""
    return Pseudonymizer(secret)(msisdn)


@dataclass
class Simulator:
    """All simulator state: subscribers, fault rules, stats, seen nonces."""

    key_id: str
    secret: str
    seed_path: Path | None = None
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    monotonic: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    subscribers: dict[str, SimSubscriber] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    fault_hits: Counter[str] = field(default_factory=Counter)
    auth_failures: int = 0
    inflight: int = 0
    max_inflight: int = 0
    nonces: dict[str, int] = field(default_factory=dict)
    cards: dict[str, SimCard] = field(default_factory=dict)
    topups: int = 0
    faults: FaultTable = field(init=False)
    pseudonym: Pseudonymizer = field(init=False)

    def __post_init__(self) -> None:
        self.faults = FaultTable(clock=self.monotonic, rng=self.rng)
        self.pseudonym = Pseudonymizer(self.secret)
        self.reset()

    def reset(self) -> None:
        self.subscribers = load_seed(self.seed_path, self.now().astimezone(LOCAL_TZ).date())
        self.cards = demo_cards()
        self.topups = 0
        self.faults.clear()
        self.calls.clear()
        self.attempts.clear()
        self.fault_hits.clear()
        self.auth_failures = 0
        self.max_inflight = self.inflight
        self.nonces.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": {self.pseudonym(msisdn): count for msisdn, count in self.calls.items()},
            "total_calls": sum(self.calls.values()),
            "inflight": self.inflight,
            "max_inflight": self.max_inflight,
            "attempts": dict(self.attempts),
            "max_attempts": max(self.attempts.values(), default=0),
            "fault_hits": dict(self.fault_hits),
            "auth_failures": self.auth_failures,
            "topups": self.topups,
            "rules": [rule.describe() for rule in self.faults.rules],
        }

    def check_auth(self, request: web.Request, body: bytes) -> str | None:
        """None if the request is properly signed, else the problem code."""
        parsed = parse_authorization(request.headers.get("Authorization"))
        ts, nonce = request.headers.get("X-BQ-Timestamp", ""), request.headers.get("X-BQ-Nonce", "")
        if parsed is None or parsed[0] != self.key_id or not _TIMESTAMP.fullmatch(ts) or not nonce:
            return "UNAUTHENTICATED"
        now_ms = int(self.now().timestamp() * 1000)
        if abs(now_ms - int(ts)) > _SKEW_MS:
            return "TIMESTAMP_OUT_OF_WINDOW"
        query = canonical_query(request.query.items())
        message = string_to_sign(request.method, request.path, query, parsed[0], ts, nonce, body)
        if not verify_signature(self.secret, message, parsed[1]):
            return "UNAUTHENTICATED"
        for seen, at in list(self.nonces.items()):
            if now_ms - at > 2 * _SKEW_MS:
                del self.nonces[seen]
        if nonce in self.nonces:
            return "NONCE_REPLAYED"
        self.nonces[nonce] = now_ms
        return None


SIM = web.AppKey("SIM", Simulator)


async def _until_closed(request: web.Request, limit: float) -> None:
    loop = asyncio.get_running_loop()
    ends = loop.time() + limit
    while loop.time() < ends:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.02)


def _abort(request: web.Request) -> web.Response:
    """Drop the connection; aiohttp then ignores the write of the returned response."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=200)


# --- handlers ----------------------------------------------------------------------------


async def _answer(
    request: web.Request, dialect: str, msisdn: str, body: bytes
) -> web.StreamResponse:
    sim = request.app[SIM]
    problem = sim.check_auth(request, body)
    if problem is not None:
        sim.auth_failures += 1
        return _problem(401, problem)
    sim.calls[msisdn] += 1
    sim.attempts[request.headers.get("X-Request-Id", "-")[:64]] += 1
    rule = sim.faults.pick(msisdn)
    if rule is not None:
        sim.fault_hits[rule.fault] += 1
    sub = sim.subscribers.get(msisdn)
    now = sim.now()

    def normal_text() -> str:
        if dialect == "v1":
            return json.dumps(
                (sub or SimSubscriber()).v1(now, request.headers.get("X-Request-Id", "sim")),
                ensure_ascii=False,
            )
        return json.dumps((sub or SimSubscriber()).tmf654(), ensure_ascii=False)

    if rule is not None:
        p = rule.params
        match rule.fault:
            case "latency":
                extra = sim.rng.uniform(0, p.get("jitter_ms", 0)) if p.get("jitter_ms") else 0
                await asyncio.sleep((p.get("ms", 100) + extra) / 1000)
            case "hang":
                await _until_closed(request, 3600)
                return _abort(request)
            case "slow_body":
                data = normal_text().encode()
                response = web.StreamResponse(status=200)
                response.content_type = "application/json"
                response.content_length = len(data)
                await response.prepare(request)
                for i in range(len(data)):
                    if request.transport is None or request.transport.is_closing():
                        break
                    await response.write(data[i : i + 1])
                    await asyncio.sleep(p.get("interval_ms", 100) / 1000)
                return response
            case "reset":
                if p.get("when", "before") == "mid":
                    data = normal_text().encode()
                    response = web.StreamResponse(status=200)
                    response.content_type = "application/json"
                    response.content_length = len(data)
                    await response.prepare(request)
                    await response.write(data[: len(data) // 2])
                    await asyncio.sleep(0.01)
                return _abort(request)
            case "status":
                return _problem(p.get("status", 503), retry_after=p.get("retry_after"))
            case "rate_limit":
                return _problem(429, retry_after=p.get("retry_after", 1))
            case "outage":
                return _problem(503, retry_after=p.get("retry_after"))
            case "html_error":
                status = p.get("status", 502)
                return web.Response(
                    status=status,
                    content_type="text/html",
                    text=f"<html><body><h1>{status} Bad Gateway</h1><hr>nginx</body></html>",
                )
            case "truncated_json":
                data = normal_text().encode()
                return _json(data[: p.get("bytes", len(data) // 2)])
            case "invalid_json":
                text = normal_text()
                variant = p.get("variant", "trailing_comma")
                if variant == "trailing_comma":
                    return _json(text[:-1] + ",}" if text.endswith("}") else text[:-1] + ",]")
                if variant == "single_quotes":
                    return _json(text.replace('"', "'"))
                return _json(_AMOUNT.sub(r"\1: NaN", text, count=1))
            case "bad_encoding":
                variant = p.get("variant", "gbk")
                doc = json.loads(normal_text())
                if variant == "gbk":
                    wrapper = {"operator": "中国移动", "payload": doc}
                    if dialect == "v1":
                        doc["operator"] = "中国移动"
                        return _json(json.dumps(doc, ensure_ascii=False).encode("gbk"))
                    return _json(json.dumps(wrapper, ensure_ascii=False).encode("gbk"))
                raw = json.dumps(doc, ensure_ascii=False).encode()
                if variant == "bom":
                    return _json(b"\xef\xbb\xbf" + raw)
                return _json(raw.replace(b'"', b'"\xff', 1))
            case "empty_body":
                return _json(b"")
            case "auth":
                sim.auth_failures += 1
                return _problem(
                    401,
                    {
                        "signature": "UNAUTHENTICATED",
                        "skew": "TIMESTAMP_OUT_OF_WINDOW",
                        "replay": "NONCE_REPLAYED",
                    }[p.get("variant", "signature")],
                )
            case name if name in BODY_FAULTS:
                if dialect == "v1":
                    doc = (sub or SimSubscriber()).v1(
                        now, request.headers.get("X-Request-Id", "sim")
                    )
                    return _json(mutate_v1(rule, doc, now))
                return _json(mutate_tmf(rule, (sub or SimSubscriber()).tmf654()))
    if sub is None:
        if dialect == "v1":
            return _problem(404)
        return _json(json.dumps({"code": "60", "reason": "Not Found"}), status=404)
    return _json(normal_text())


@web.middleware
async def _client_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A body that cannot be read is the client's fault: 400, not a 500 and a traceback;
    a client that hung up mid-body gets nothing (nobody would read it)."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.RequestPayloadError:
        return _problem(400, "MALFORMED_BODY")
    except ConnectionError:
        return _abort(request)
    return response


@web.middleware
async def _track(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/_sim/"):
        response: web.StreamResponse = await handler(request)
        return response
    sim = request.app[SIM]
    sim.inflight += 1
    sim.max_inflight = max(sim.max_inflight, sim.inflight)
    try:
        response = await handler(request)
        return response
    finally:
        sim.inflight -= 1


async def query_v1(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    try:
        doc = json.loads(body)
        raw = doc["msisdn"]
        if not isinstance(raw, str) or not _E164.match(raw):
            raise ValueError("msisdn")
        msisdn = canonical_msisdn(raw)
    except (ValueError, KeyError, TypeError):
        return _problem(400)
    return await _answer(request, "v1", msisdn, body)


async def tmf_buckets(request: web.Request) -> web.StreamResponse:
    raw = next(
        (
            request.query[k]
            for k in ("logicalResource.id", "relatedParty.id", "product.id")
            if k in request.query
        ),
        None,
    )
    try:
        msisdn = canonical_msisdn(raw or "")
    except ValueError:
        return _json(
            json.dumps({"code": "28", "reason": "invalid query-string parameter"}), status=400
        )
    return await _answer(request, "tmf654", msisdn, b"")


def _money(minor: int, currency: str) -> dict[str, Any]:
    return {"amount_minor": minor, "currency": currency}


async def topup(request: web.Request) -> web.StreamResponse:
    """`POST /v1/topup`: credit a recharge card to a subscriber (`sim.topup`)."""
    sim = request.app[SIM]
    body = await request.read()
    problem = sim.check_auth(request, body)
    if problem is not None:
        sim.auth_failures += 1
        return _problem(401, problem)
    parsed = parse_topup(body)
    if parsed is None:
        return _problem(400)
    msisdn, number = canonical_msisdn(parsed[0]), parsed[1]
    sim.topups += 1
    rule = sim.faults.pick(msisdn)
    if rule is not None:
        sim.fault_hits[rule.fault] += 1
        match rule.fault:
            case "latency":
                await asyncio.sleep(rule.params.get("ms", 100) / 1000)
            case "hang":
                await _until_closed(request, 3600)
                return _abort(request)
            case "reset":
                return _abort(request)
            case "status" | "outage":
                return _problem(rule.params.get("status", 503))
            case "html_error":
                return web.Response(
                    status=rule.params.get("status", 502),
                    content_type="text/html",
                    text="<h1>x</h1>",
                )
            case "empty_body":
                return _json(b"")
    card = sim.cards.get(number)
    if card is None:
        return _problem(422, "INVALID_CARD")
    if card.used:
        return _problem(409, "CARD_USED")
    sub = sim.subscribers.get(msisdn)
    if sub is None:
        return _problem(404)
    card.used = True
    sub.main_minor = (sub.main_minor or 0) + card.value_minor
    await emit_balance(
        request.app, "TopupBalanceCreateEvent", msisdn, sub.main_minor, sub.currency, sub.buckets
    )
    answer: dict[str, Any] = {
        "status": "ok",
        "credited": _money(card.value_minor, sub.currency),
        "balance": _money(sub.main_minor, sub.currency),
        "request_id": request.headers.get("X-Request-Id", "sim")[:64],
    }
    if rule is not None and rule.fault == "wrong_types":
        answer["balance"]["amount_minor"] = f"{sub.main_minor / 100:.2f}"
    elif rule is not None and rule.fault == "missing_field":
        del answer["balance"]
    return _json(json.dumps(answer))


async def put_card(request: web.Request) -> web.Response:
    number = request.match_info["card"]
    try:
        request.app[SIM].cards[number] = card_from_doc(await _admin_json(request))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.json_response({"ok": True})


async def _admin_json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body is not JSON") from exc


async def put_subscriber(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    try:
        msisdn = canonical_msisdn(request.match_info["msisdn"])
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    doc = await _admin_json(request)
    if isinstance(doc, dict) and doc.get("not_found") is True:
        sim.subscribers.pop(msisdn, None)
        return web.json_response({"ok": True, "present": False})
    try:
        sim.subscribers[msisdn] = subscriber_from_doc(doc)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.json_response({"ok": True, "present": True})


async def post_fault(request: web.Request) -> web.Response:
    try:
        rule = request.app[SIM].faults.add(await _admin_json(request))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.json_response(rule.describe(), status=201)


async def delete_faults(request: web.Request) -> web.Response:
    request.app[SIM].faults.clear()
    return web.json_response({"ok": True})


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM].stats())


async def post_reset(request: web.Request) -> web.Response:
    request.app[SIM].reset()
    return web.json_response({"ok": True})


def create_sim_app(
    *,
    key_id: str,
    secret: str,
    seed_path: Path | None = None,
    now: Callable[[], dt.datetime] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    seed: int = 0,
    events_url: str | None = None,
) -> web.Application:
    """The simulator app; bind it to 127.0.0.1 only. With `events_url` (NATS) it
    publishes balance events (`hotline.balance.sim.events`)."""
    app = web.Application(middlewares=[_client_errors, _track], client_max_size=65536)
    app[SIM] = Simulator(
        key_id=key_id,
        secret=secret,
        seed_path=seed_path,
        now=now or (lambda: dt.datetime.now(dt.UTC)),
        monotonic=monotonic,
        rng=random.Random(seed),
    )
    app.router.add_post(V1_PATH, query_v1)
    app.router.add_get(TMF654_PATH, tmf_buckets)
    app.router.add_post(TOPUP_PATH, topup)
    app.router.add_put("/_sim/subscribers/{msisdn}", put_subscriber)
    app.router.add_put("/_sim/cards/{card:[0-9]{16}}", put_card)
    app.router.add_post("/_sim/faults", post_fault)
    app.router.add_delete("/_sim/faults", delete_faults)
    app.router.add_get("/_sim/stats", get_stats)
    app.router.add_post("/_sim/reset", post_reset)
    if events_url:
        install_events(app, events_url)
    install_orders(app, monotonic)  # TMF620/622/637: hotline.balance.sim.orders
    return app
