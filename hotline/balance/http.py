"""The `http` provider: the operator's balance API, "balance-query v1" or TMF654 v4.

aiohttp is the client (already the server framework; one HTTP stack to patch and
tune). Per-phase timeouts (connect, between body bytes) are set here; the overall
budget is the `Deadline` layer outside, which also bounds slow-drip bodies. Bodies
are read up to a cap and handed to the pure validation pipeline in `parse`.
The MSISDN goes in a POST body (v1) or, for TMF654, in the query string, which is why
nothing here logs a URL.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

from hotline.balance.model import BalanceSnapshot
from hotline.balance.msisdn import canonical_msisdn, e164
from hotline.balance.parse import Limits, decode_json, error_for_status, parse_tmf654, parse_v1
from hotline.balance.signing import auth_headers, canonical_query
from hotline.base.config import BalanceSettings
from hotline.base.errors import (
    ConfigError,
    InvalidUpstreamAnswer,
    UpstreamNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from hotline.base.httpbody import read_capped
from hotline.base.privacy import Pseudonymizer
from hotline.resilience import lookup_id

__all__ = ["TMF654_PATH", "V1_PATH", "HttpProvider"]

V1_PATH = "/balance-query/v1/query"
TMF654_PATH = "/tmf-api/prepayBalanceManagement/v4/bucket"


def _ssl_context(config: BalanceSettings) -> ssl.SSLContext:
    """Built at startup: it reads the CA files, and a bad `ca_file` is a config error."""
    try:
        context = ssl.create_default_context(
            cafile=str(config.ca_file) if config.ca_file is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"config balance.ca_file (HOTLINE_BALANCE__CA_FILE): cannot load {config.ca_file}: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from exc
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class HttpProvider:
    """`BalanceProvider` over HTTP(S), one connection pool per provider."""

    name = "http"

    def __init__(
        self,
        config: BalanceSettings,
        pseudonym: Pseudonymizer,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        if not config.url:
            raise ConfigError("config balance.url (HOTLINE_BALANCE__URL): required for http")
        if not config.key_id or config.secret is None:
            raise ConfigError(
                "config balance.key_id / balance.secret (HOTLINE_BALANCE__KEY_ID, "
                "HOTLINE_BALANCE__SECRET): required for http"
            )
        self._config = config
        self._base = URL(config.url)
        self._key_id = config.key_id
        self._secret = config.secret.get_secret_value()
        self._pseudonym = pseudonym
        self._now = now
        self._nonce = nonce
        self._limits = Limits(
            max_main_minor=config.max_main_balance * 100,
            currencies=config.currencies,
            max_age=max(config.max_stale, 60.0),  # an answer a minute old is still news
            gb_bytes=config.gb_bytes,
        )
        self._ssl = _ssl_context(config)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._config.max_concurrency, ssl=self._ssl)
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=self._config.connect_timeout,
                sock_read=self._config.read_timeout,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                raise_for_status=False,
            )
        return self._session

    def _request(self, canonical: str) -> tuple[str, URL, bytes, dict[str, str]]:
        headers = {"Accept": "application/json", "X-Request-Id": lookup_id()}
        if self._config.dialect == "v1":
            method, path, query = "POST", V1_PATH, ""
            body = json.dumps(
                {"msisdn": e164(canonical), "include": ["main", "buckets"]}, separators=(",", ":")
            ).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            method, path, body = "GET", TMF654_PATH, b""
            query = canonical_query([(self._config.tmf_lookup, canonical)])
        full_path = self._base.path.rstrip("/") + path
        headers.update(
            auth_headers(
                method=method,
                path=full_path,
                query=query,
                key_id=self._key_id,
                secret=self._secret,
                body=body,
                timestamp_ms=int(self._now().timestamp() * 1000),
                nonce=self._nonce(),
            )
        )
        url = self._base.with_path(full_path, encoded=False)
        if query:
            url = URL(str(url) + "?" + query, encoded=True)
        return method, url, body, headers

    async def fetch(self, msisdn: str) -> BalanceSnapshot:
        try:
            canonical = canonical_msisdn(msisdn)
        except ValueError as exc:
            raise UpstreamNotFound("not a phone number") from exc
        method, url, body, headers = self._request(canonical)
        limit = self._config.max_body_bytes
        try:
            async with self._client().request(
                method, url, data=body or None, headers=headers, allow_redirects=False
            ) as response:
                if (response.content_length or 0) > limit:
                    raise InvalidUpstreamAnswer(f"$: body longer than {limit} bytes")
                raw = await read_capped(response, limit)
                status = response.status
                content_type, charset = response.content_type, response.charset
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise UpstreamTimeout(f"transport timeout ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"transport error ({type(exc).__name__})") from exc
        fetched_at = self._now()
        if status != 200:
            doc: Any = None
            try:
                doc = decode_json(raw, content_type, charset, limit)
            except InvalidUpstreamAnswer:
                doc = None  # an HTML error page from a gateway: the status still tells
            raise error_for_status(status, doc, retry_after)
        doc = decode_json(raw, content_type, charset, limit)
        token = self._pseudonym(canonical)
        if self._config.dialect == "v1":
            return parse_v1(doc, token=token, fetched_at=fetched_at, limits=self._limits)
        return parse_tmf654(doc, token=token, fetched_at=fetched_at, limits=self._limits)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
