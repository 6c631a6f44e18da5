"""One declared endpoint's raw call: POST a JSON object, read a JSON answer.

What the answer means is the flow's business (`http.request`); here only the transport
is judged, onto the errors the resilience layers understand (`hotline.resilience.faults`):

- a timeout → `UpstreamTimeout`; a connection failure → `UpstreamUnavailable`;
- 5xx → `UpstreamRefused` (counts for the breaker); 401/403 → `UpstreamRefused` (the
  configuration is wrong: counts too); 429 → `UpstreamRefused` (not counted);
- a body that is not strict UTF-8 JSON (or too long) → `InvalidUpstreamAnswer`;
- any other status with a JSON body → an `HttpAnswer`: a 4xx with `{"code": …}` is the
  upstream's business answer ("card already used"), not a failure.

HMAC signing is the balance provider's (`hotline.balance.signing`), so the billing
simulator verifies both alike. Nothing here logs a body or a URL.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

from hotline.balance.parse import decode_json
from hotline.balance.signing import auth_headers, canonical_query
from hotline.base.config import HttpEndpointSettings
from hotline.base.errors import InvalidUpstreamAnswer, UpstreamTimeout, UpstreamUnavailable
from hotline.flow.services import HttpAnswer
from hotline.resilience import UpstreamRefused, lookup_id

__all__ = ["EndpointClient"]


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(16384):
        size += len(chunk)
        if size > limit:
            raise InvalidUpstreamAnswer(f"$: body longer than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class EndpointClient:
    """POSTs JSON to one endpoint; `session` is shared by every endpoint of the service."""

    def __init__(
        self,
        name: str,
        config: HttpEndpointSettings,
        session: Callable[[], aiohttp.ClientSession],
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.name = name
        self._config = config
        self._url = URL(config.url)
        self._session = session
        self._now = now
        self._nonce = nonce
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=config.connect_timeout, sock_read=config.timeout
        )

    def _headers(self, body: bytes) -> dict[str, str]:
        config = self._config
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json; charset=utf-8",
            "X-Request-Id": lookup_id(),
        }
        if config.auth == "hmac" and config.key_id and config.secret is not None:
            headers.update(
                auth_headers(
                    method="POST",
                    path=self._url.path,
                    query=canonical_query(self._url.query.items()),
                    key_id=config.key_id,
                    secret=config.secret.get_secret_value(),
                    body=body,
                    timestamp_ms=int(self._now().timestamp() * 1000),
                    nonce=self._nonce(),
                )
            )
        elif config.auth == "bearer" and config.token is not None:
            headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
        return headers

    async def post(self, payload: dict[str, Any]) -> HttpAnswer:
        """Send `payload`; the answer, or one of the upstream errors (module docstring)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        limit = self._config.max_body_bytes
        try:
            async with self._session().post(
                self._url,
                data=body,
                headers=self._headers(body),
                timeout=self._timeout,
                allow_redirects=False,
                ssl=self._config.verify_tls,
            ) as response:
                if (response.content_length or 0) > limit:
                    raise InvalidUpstreamAnswer(f"$: body longer than {limit} bytes")
                raw = await _read_capped(response, limit)
                status = response.status
                content_type, charset = response.content_type, response.charset
        except TimeoutError as exc:
            raise UpstreamTimeout(f"transport timeout ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"transport error ({type(exc).__name__})") from exc
        if status >= 500 or status in (401, 403, 429):
            raise UpstreamRefused(status, "HTTP", retryable=False, breaker=status != 429)
        return HttpAnswer(status, decode_json(raw, content_type, charset, limit))
