"""The OpenAPI document is the contract: valid 3.1, every route in it, every answer
as it says (schemathesis against the live server), and docs/api.md's error table."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from api.errors import ERRORS
from api.openapi import SCOPES
from api.pages import STATIC
from tests.api.conftest import ROOT, Api, running

ST = Path(sys.executable).with_name("st")


async def test_document_is_valid_openapi_31_and_lists_every_route(api: Api) -> None:
    r = await api.client.get("/api/v1/openapi.json")
    assert r.status == 200
    doc = await r.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    served = {
        (route.method, route.resource.canonical)
        for route in api.client.app.router.routes()  # type: ignore[union-attr]
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method not in ("HEAD", "*")
        and route.resource.canonical not in ("/api/v1/openapi.json", "/api/v1/docs")
    }
    assert served == documented
    codes = {row["code"] for row in doc["x-error-codes"]}
    assert codes == set(ERRORS)
    for ops in doc["paths"].values():
        for op in ops.values():
            assert set(op["x-error-codes"]) <= codes


def test_docs_error_table_matches_the_code() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `([a-z_]+)` \| (\d{3}) \| (.+?) \| (.+?) \| (.+?) \|$", text, flags=re.M
    )
    assert {code: rest for code, *rest in rows} == {
        code: [str(row.status), row.en, row.zh, row.action] for code, row in ERRORS.items()
    }


async def test_docs_page_and_h5_are_offline(api: Api) -> None:
    for path in ("/api/v1/docs", "/h5"):
        r = await api.client.get(path)
        assert r.status == 200 and "default-src 'self'" in r.headers["Content-Security-Policy"]
    for file in STATIC.iterdir():
        text = file.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), file.name
        assert "cdn" not in text.lower(), file.name
        assert (await api.client.get(f"/api/static/{file.name}")).status == 200


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is a dev dependency")
async def test_schemathesis_finds_nothing(tmp_path: Path, redis_url: str) -> None:
    """Every operation, positive and negative inputs, all checks, against the live server."""
    rates = {"client_rate": "100000/minute", "subscriber_rate": "100000/minute"}
    stores = {
        "plans": {"store_path": str(tmp_path / "plans.sqlite3")},
        "reminders": {"database_path": str(tmp_path / "reminders.sqlite3")},
    }
    async with running(tmp_path, redis_url, api=rates, **stores) as api:
        who = api.register("fuzz", ",".join(SCOPES))
        client_token = await api.client_token(who)
        subscriber = await api.sign_in(client_token)
        base = str(api.client.make_url("/api/v1/openapi.json"))
        summaries = []
        runs = (  # each operation with the token it takes; sign-out last: it ends the token
            (
                (
                    *("--include-tag", "me"),
                    *("--exclude-operation-id", "placeOrder"),
                    *("--exclude-operation-id", "setReminder"),
                ),
                subscriber,
            ),
            # A schema-valid order or amount may rightly be refused by state or
            # configuration (a key reused with another body: 422; an amount the operator
            # does not offer: 400), so these two skip only the "valid data is accepted"
            # check; every other check (statuses, bodies, 5xx, negative data) holds.
            (
                (
                    *("--include-operation-id", "placeOrder"),
                    *("--include-operation-id", "setReminder"),
                    *("--exclude-checks", "positive_data_acceptance"),
                ),
                subscriber,
            ),
            (("--include-tag", "auth", "--exclude-operation-id", "revokeToken"), client_token),
            (("--include-operation-id", "revokeToken"), subscriber),
        )
        for filters, token in runs:
            proc = await asyncio.create_subprocess_exec(
                str(ST),
                "run",
                base,
                "--checks",
                "all",
                *filters,
                "-H",
                f"Authorization: Bearer {token}",
                "--max-examples",
                "40",
                "--seed",
                "1",
                "--no-color",
                "--generation-database",
                "none",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=tmp_path,  # its .schemathesis/ cache stays out of the checkout
                env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
            )
            out, _ = await proc.communicate()
            text = out.decode()
            summaries.append(text)
            assert proc.returncode == 0, text[-6000:]
        (tmp_path / "schemathesis.txt").write_text("\n".join(summaries), encoding="utf-8")
