"""The voice answer to a call the guard will not pass to the flow: a sentence, then hang up."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import web

from hotline.web.guards import polite_sentence

__all__ = ["polite_reply", "polite_reply_africastalking"]


def _document(request: web.Request, reason: str, hangup: bool) -> web.Response:
    language, text = polite_sentence(request.app, reason)
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
