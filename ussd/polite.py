"""The USSD answer to a request the guard will not pass to the flow (rate limits, bugs).

A handset shows whatever follows `END `, so an overloaded or over-eager subscriber
reads a sentence from the catalog instead of the gateway's generic error.
"""

from __future__ import annotations

from aiohttp import web

from hotline.web.guards import polite_sentence

__all__ = ["polite_reply"]


async def polite_reply(request: web.Request, reason: str) -> web.StreamResponse:
    """`END <sentence>` in the default language."""
    _, text = polite_sentence(request.app, reason)
    return web.Response(text=f"END {text}", content_type="text/plain", charset="utf-8")
