"""The API's durable records on SQLite (the embedded default) and a real PostgreSQL:
clients by the command line, revocations and the audit, through the running app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.pipeline import API
from api.store import MIGRATIONS, ApiStore
from tests.api.conftest import running
from tests.store.pg import postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'api-store.sqlite3'}"
    else:
        yield from postgres_url()


async def test_clients_revocations_and_audit(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    async with running(tmp_path, redis_url, api={"db_url": database_url}) as api:
        who = api.register("portal", "balance:read")
        subscriber = await api.sign_in(await api.client_token(who))
        headers = {"Authorization": f"Bearer {subscriber}"}
        assert (await api.client.get("/api/v1/me/balance", headers=headers)).status == 200
        assert (await api.client.post("/api/v1/auth/revoke", headers=headers)).status == 200
        ctx = api.client.app[API]  # type: ignore[index]
        await ctx.audit.flush()
        rows = await ctx.store.audit()
        assert [r.endpoint for r in rows] == [
            "clientToken",
            "sendCode",
            "subscriberToken",
            "getBalance",
            "revokeToken",
        ]
        assert rows[-1].jti is not None
    store = ApiStore(database_url)
    try:
        [client] = store.clients()
        assert client.name == "portal" and client.scopes == ("balance:read",)
        assert client.secret_sha256 != who.secret and len(client.secret_sha256) == 64
        assert [jti for jti, _ in store.live_revocations(0)] == [rows[-1].jti]
        assert store.revoke_client("portal") is not None
        assert store.revoked_clients_since(0) == [client.id]
        assert [m.id for m in MIGRATIONS] == ["api-1-create"]
    finally:
        await store.close()
