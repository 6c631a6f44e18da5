"""The voice answer to a call the guard will not pass to the flow: a sentence, then hang up."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import web

from hotline.i18n import TextFormatter
from hotline.keys import ENGINE, SETTINGS
from hotline.screen import PromptPart

__all__ = ["polite_reply", "polite_reply_africastalking"]

_KEYS = {"subscriber_rate": "error.rate_limited"}
_FORMATTER = TextFormatter()


def _document(request: web.Request, reason: str, hangup: bool) -> web.Response:
    app = request.app
    language = app[SETTINGS].default_language
    text = (
        app[ENGINE]
        .catalogs[language]
        .render(PromptPart(_KEYS.get(reason, "error.busy")), _FORMATTER)
    )
    root = ET.Element("Response")
    ET.SubElement(root, "Say", {"language": language}).text = text
    if hangup:
        ET.SubElement(root, "Hangup")
    body = b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8")
    return web.Response(body=body, content_type="application/xml", charset="utf-8")


async def polite_reply(request: web.Request, reason: str) -> web.StreamResponse:
    """TwiML `<Say>` of the catalog sentence and `<Hangup/>`, in the default language."""
    return _document(request, reason, hangup=True)


async def polite_reply_africastalking(request: web.Request, reason: str) -> web.StreamResponse:
    """Africa's Talking voice XML: `<Say>`; the call ends when the actions run out."""
    return _document(request, reason, hangup=False)
