"""One decoding per request: the memo, and readers whose fields the guard may trust."""

from __future__ import annotations

import asyncio
from unittest import mock
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

import ivr.routes
import ussd.form
from hotline.base.config import Settings
from hotline.base.errors import BadGatewayRequest
from hotline.web.forms import FormReader, GatewayForm, gateway_form
from hotline.web.keys import SETTINGS

FORM = "application/x-www-form-urlencoded"


def _request(body: bytes, content_type: str = FORM) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings(pseudonym_secret="forms-test")
    payload = StreamReader(mock.Mock(), 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    return make_mocked_request("POST", "/", headers, app=app, payload=payload)


async def test_the_reader_runs_once_and_its_refusal_repeats() -> None:
    calls: list[str] = []

    async def reader(request: web.Request) -> GatewayForm:
        calls.append("read")
        raise BadGatewayRequest("text may only hold the digits 0-9, * and #")

    request = _request(b"text=x")
    for _ in range(2):
        with pytest.raises(BadGatewayRequest, match="text may only hold"):
            await gateway_form(request, reader)
    assert calls == ["read"]
    form = await gateway_form(_request(b"text=1"), ussd.form.read_form)
    assert form.fields == {"text": "1"}


_PIECES = st.sampled_from(
    ["a", "=", "&", "%", "+", " ", "\n", "中", "B", "8", "%2B", "%e4%b8%ad", "%ff", "%C3", "&&"]
)


@pytest.mark.parametrize("reader", [ussd.form.read_form, ivr.routes.read_form])
@settings(max_examples=150, deadline=None)
@given(text=st.lists(_PIECES, max_size=16).map("".join), tail=st.binary(max_size=1))
def test_pairs_given_to_the_guard_are_its_own_reading(
    reader: FormReader, text: str, tail: bytes
) -> None:
    """When a reader hands the guard every field, they are exactly the guard's lenient
    reading (what a signature is computed over and field sizes are checked on)."""
    body = text.encode() + tail

    async def read() -> GatewayForm | None:
        try:
            return await gateway_form(_request(body), reader)
        except BadGatewayRequest:
            return None

    form = asyncio.run(read())
    if form is None or form.pairs is None:
        return
    pairs = form.pairs.items() if hasattr(form.pairs, "items") else form.pairs
    lenient = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    assert list(pairs) == lenient
