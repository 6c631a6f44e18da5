"""The USSD answer to a request the guard will not pass to the flow (rate limits, bugs).

A handset shows whatever follows `END `, so an overloaded or over-eager subscriber
reads a sentence from the catalog instead of the gateway's generic error.
"""

from __future__ import annotations

from aiohttp import web

from hotline.i18n import TextFormatter
from hotline.keys import ENGINE, SETTINGS
from hotline.screen import PromptPart

__all__ = ["KEYS", "polite_reply"]

# Guard reason → catalog key; anything else is our fault and gets the busy sentence.
KEYS = {"subscriber_rate": "error.rate_limited", "gateway_rate": "error.busy"}
_FORMATTER = TextFormatter()


async def polite_reply(request: web.Request, reason: str) -> web.StreamResponse:
    """`END <sentence>` in the default language (the subscriber's is not loaded yet)."""
    app = request.app
    catalog = app[ENGINE].catalogs[app[SETTINGS].default_language]
    text = catalog.render(PromptPart(KEYS.get(reason, "error.busy")), _FORMATTER)
    return web.Response(text=f"END {text}", content_type="text/plain", charset="utf-8")
