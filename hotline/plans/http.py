"""The `http` provider: TMF622 ordering, TMF637 inventory and TMF620 offerings over HTTP.

Signed like the balance provider (`hotline.balance.signing`), and every call inside the
resilience layers (`hotline.resilience.build_stack`): reads may be retried, a
submission never is (`idempotent=False`) — it carries its order id as `externalId` and
`Idempotency-Key`, and an answer that never came is the desk's to reconcile. The calls
are keyed `<id>|<msisdn>`; the layers only ever see the number's pseudonym.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry
from yarl import URL

from hotline import resilience
from hotline.balance.msisdn import canonical_msisdn, e164
from hotline.balance.parse import decode_json, error_for_status
from hotline.balance.signing import auth_headers, canonical_query
from hotline.base.config import PlansSettings
from hotline.base.errors import (
    ConfigError,
    InvalidUpstreamAnswer,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from hotline.base.httpbody import read_capped
from hotline.base.privacy import Pseudonymizer, normalize_msisdn
from hotline.plans.model import CurrentPlan, Offer, OrderOutcome, OrderRequest
from hotline.plans.tmf import (
    INVENTORY_PATH,
    OFFERING_PATH,
    ORDER_PATH,
    PASSWORD_PATH,
    order_body,
    parse_catalog,
    parse_inventory,
    parse_order,
    parse_orders,
)
from hotline.resilience.metrics import CallMetrics

__all__ = ["HttpPlans", "NotPlaced"]


class NotPlaced(UpstreamUnavailable):
    """The order surely did not reach the ordering system (refused before acceptance)."""


def _number(key: str) -> str:
    return key.rsplit("|", 1)[-1]


class _Client:
    """The raw HTTP calls (no layers)."""

    def __init__(self, config: PlansSettings, now: Callable[[], dt.datetime]) -> None:
        assert config.url and config.key_id and config.secret is not None
        self._config = config
        self._base = URL(config.url)
        self._key_id = config.key_id
        self._secret = config.secret.get_secret_value()
        self._now = now
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._config.max_concurrency),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self._config.connect_timeout,
                    sock_read=self._config.read_timeout,
                ),
                auto_decompress=False,
                raise_for_status=False,
            )
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON) of one signed request; transport errors as upstream errors."""
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        qs = canonical_query(query or [])
        full = self._base.path.rstrip("/") + path
        sent = {"Accept": "application/json", "X-Request-Id": resilience.lookup_id()}
        if data:
            sent["Content-Type"] = "application/json; charset=utf-8"
        sent.update(headers or {})
        sent.update(
            auth_headers(
                method=method,
                path=full,
                query=qs,
                key_id=self._key_id,
                secret=self._secret,
                body=data,
                timestamp_ms=int(self._now().timestamp() * 1000),
                nonce=uuid.uuid4().hex,
            )
        )
        url = self._base.with_path(full, encoded=False)
        if qs:
            url = URL(str(url) + "?" + qs, encoded=True)
        limit = self._config.max_body_bytes
        try:
            async with self._client().request(
                method, url, data=data or None, headers=sent, allow_redirects=False
            ) as response:
                raw = await read_capped(response, limit)
                status, ctype, charset = response.status, response.content_type, response.charset
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise UpstreamTimeout(f"transport timeout ({type(exc).__name__})") from exc
        except aiohttp.ClientConnectorError as exc:
            raise NotPlaced(f"cannot connect ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"transport error ({type(exc).__name__})") from exc
        if status >= 300:
            try:
                doc = decode_json(raw, ctype, charset, limit)
            except InvalidUpstreamAnswer:
                doc = None
            raise error_for_status(status, doc, retry_after)
        return status, decode_json(raw, ctype, charset, limit)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpPlans:
    """`PlansProvider` over HTTP, each call inside the resilience layers."""

    name = "http"

    def __init__(
        self,
        config: PlansSettings,
        pseudonym: Pseudonymizer,
        registry: CollectorRegistry | None = None,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if not config.url or not config.key_id or config.secret is None:
            raise ConfigError("config plans.url / key_id / secret: required for provider http")
        self._http = _Client(config, now)
        self._pending: dict[str, tuple[str, Any]] = {}
        metrics = CallMetrics(registry if registry is not None else CollectorRegistry(), "plans")

        def key(raw: str) -> str:
            number = _number(raw)
            try:
                return pseudonym(canonical_msisdn(number))
            except ValueError:
                return pseudonym(normalize_msisdn(number) or "-")

        def stack(raw: Callable[[str], Any], *, idempotent: bool) -> Any:
            return resilience.build_stack(
                resilience.FunctionCall("plans", raw), config, key, metrics, idempotent=idempotent
            )

        self._inventory = stack(self._raw_inventory, idempotent=True)
        self._catalog = stack(self._raw_catalog, idempotent=True)
        self._lookup = stack(self._raw_lookup, idempotent=True)
        self._submit = stack(self._raw_submit, idempotent=False)
        self._password = stack(self._raw_password, idempotent=False)

    # -- raw calls (behind the layers) --------------------------------------------------

    async def _raw_inventory(self, msisdn: str) -> CurrentPlan:
        _, doc = await self._http.call("GET", INVENTORY_PATH, query=[("relatedParty.id", msisdn)])
        return parse_inventory(doc)

    async def _raw_catalog(self, msisdn: str) -> list[Offer]:
        _, doc = await self._http.call("GET", OFFERING_PATH, query=[("relatedParty.id", msisdn)])
        return parse_catalog(doc)

    async def _raw_lookup(self, key: str) -> OrderOutcome | None:
        order_id = key.split("|", 1)[0]
        _, doc = await self._http.call("GET", ORDER_PATH, query=[("externalId", order_id)])
        return parse_orders(doc, order_id)

    async def _raw_submit(self, key: str) -> OrderOutcome:
        order_id = key.split("|", 1)[0]
        _, request = self._pending[order_id]
        assert isinstance(request, OrderRequest)
        try:
            _, doc = await self._http.call(
                "POST", ORDER_PATH, body=order_body(request), headers={"Idempotency-Key": order_id}
            )
        except resilience.UpstreamRefused as exc:
            if exc.status < 500 or exc.status == 503:
                # The ordering system answered and refused: nothing was placed.
                raise NotPlaced(f"order refused ({exc.status})") from exc
            raise
        return parse_order(doc, order_id)

    async def _raw_password(self, key: str) -> bool:
        token = key.split("|", 1)[0]
        msisdn, password = self._pending[token]
        _, doc = await self._http.call(
            "POST", PASSWORD_PATH, body={"msisdn": e164(msisdn), "password": password}
        )
        valid = doc.get("valid") if isinstance(doc, dict) else None
        if not isinstance(valid, bool):
            raise InvalidUpstreamAnswer("$.valid: expected true or false")
        return valid

    # -- PlansProvider -------------------------------------------------------------------

    async def inventory(self, msisdn: str, /) -> CurrentPlan:
        found: CurrentPlan = await self._inventory.fetch(canonical_msisdn(msisdn))
        return found

    async def catalog(self, msisdn: str, /) -> Sequence[Offer]:
        found: list[Offer] = await self._catalog.fetch(canonical_msisdn(msisdn))
        return found

    async def lookup(self, order_id: str, msisdn: str, /) -> OrderOutcome | None:
        found: OrderOutcome | None = await self._lookup.fetch(f"{order_id}|{msisdn}")
        return found

    async def submit(self, request: OrderRequest, /) -> OrderOutcome:
        self._pending[request.order_id] = (request.msisdn, request)
        try:
            found: OrderOutcome = await self._submit.fetch(f"{request.order_id}|{request.msisdn}")
            return found
        finally:
            self._pending.pop(request.order_id, None)

    async def verify_password(self, msisdn: str, password: str, /) -> bool:
        token = uuid.uuid4().hex  # the password never becomes part of a key
        self._pending[token] = (msisdn, password)
        try:
            valid: bool = await self._password.fetch(f"{token}|{msisdn}")
            return valid
        finally:
            self._pending.pop(token, None)

    async def close(self) -> None:
        await self._http.close()
