"""Reading an upstream's HTTP answer without trusting its size."""

from __future__ import annotations

import aiohttp

from hotline.base.errors import InvalidUpstreamAnswer

__all__ = ["read_capped"]


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or `InvalidUpstreamAnswer` as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(16384):
        size += len(chunk)
        if size > limit:
            raise InvalidUpstreamAnswer(f"$: body longer than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
