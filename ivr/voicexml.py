"""One small XML builder for both voice dialects (TwiML and Africa's Talking).

Why not the `twilio` package's `VoiceResponse`: it would bring the whole REST SDK
(requests, aiohttp-retry, PyJWT) and 3 000 untyped generated lines for six verbs, and
Africa's Talking needs a builder anyway. This follows its pattern instead: one element
type, ElementTree serializes (nothing escaped by hand), attributes sorted and `None`
dropped, so the same plan always gives the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

__all__ = ["XML_CONTENT_TYPE", "document", "element"]

XML_CONTENT_TYPE = "application/xml"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def element(
    tag: str,
    attrs: Mapping[str, str | int | None] | None = None,
    text: str | None = None,
    children: Iterable[ET.Element] = (),
) -> ET.Element:
    """An element with sorted, non-`None` attributes, optional text and children."""
    node = ET.Element(tag)
    for name in sorted(attrs or {}):
        value = (attrs or {})[name]
        if value is not None:
            node.set(name, str(value))
    if text is not None:
        node.text = text
    node.extend(children)
    return node


def document(root: ET.Element) -> str:
    """The serialized document with its XML declaration."""
    return _DECLARATION + ET.tostring(root, encoding="unicode", short_empty_elements=True)
