"""Clients and subscriber sign-in: the CLI, client credentials, the SMS code through the
real outbox, the subscriber token, and revocation at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import redis

from tests.api.conftest import OTHER, PHONE, Api, cli, running


async def test_client_add_prints_secret_once_and_stores_only_its_hash(api: Api) -> None:
    who = api.register("wechat-mini", "balance:read,allowances:read")
    raw = (api.settings.api.db_path).read_bytes()
    assert who.secret.encode() not in raw  # only the hash is kept
    status, out, _ = cli(api.config, "api", "clients", "list")
    assert status == 0 and "wechat-mini" in out and who.client_id in out
    assert who.secret not in out and "live" in out
    status, _, err = cli(
        api.config, "api", "clients", "add", "wechat-mini", "--scopes", "plan:read"
    )
    assert status == 1 and "exists" in err
    status, _, err = cli(api.config, "api", "clients", "add", "x", "--scopes", "root:all")
    assert status == 2 and "unknown scope" in err


async def test_otp_sign_in_reads_own_balance(api: Api) -> None:
    who = api.register("app", "balance:read,allowances:read,plan:read")
    token = await api.client_token(who)
    r = await api.client.post(
        "/api/v1/auth/otp",
        json={"phone": "8613800138000"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status == 202
    assert await r.json() == {"sent": True, "expires_in": 300, "resend_after": 60}
    [row] = [r for r in api.outbox() if r["kind"] == "otp"]
    assert row["subscriber"] == PHONE and row["key"] == "otp.code" and row["state"] == "queued"
    code = json.loads(row["vals"])["code"]["v"]
    assert len(code) == 6 and code.isdigit()
    # the code is stored hashed, under a pseudonym: neither is in Redis in clear
    store = redis.Redis.from_url(api.settings.redis_url or "")
    dump = b" ".join(k + b"=" + str(store.type(k)).encode() for k in store.keys("*"))
    for key in store.keys("*api:otp:*"):
        dump += b" ".join(store.hgetall(key).values())
    store.close()
    assert code.encode() not in dump and b"13800138000" not in dump

    r = await api.client.post(
        "/api/v1/auth/token",
        json={"phone": PHONE, "code": code},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status == 200
    body = await r.json()
    assert body["subscriber"] == "138****8000" and body["token_type"] == "Bearer"
    assert "13800138000" not in body["access_token"]
    me = {"Authorization": f"Bearer {body['access_token']}", "Accept-Language": "en"}
    r = await api.client.get("/api/v1/me/balance", headers=me)
    assert r.status == 200
    balance = await r.json()
    assert balance["balance"] == {
        "minor": 1250,
        "currency": "CNY",
        "exponent": 2,
        "display": "CNY 12.50",
    }
    # A used code is gone.
    r = await api.client.post(
        "/api/v1/auth/token",
        json={"phone": PHONE, "code": code},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status == 401 and (await r.json())["code"] == "invalid_code"


async def test_token_reads_only_its_own_subscriber(api: Api) -> None:
    who = api.register("app", "balance:read")
    client_token = await api.client_token(who)
    mine = await api.sign_in(client_token, PHONE)
    theirs = await api.sign_in(client_token, OTHER)
    r1 = await api.client.get("/api/v1/me/balance", headers={"Authorization": f"Bearer {mine}"})
    r2 = await api.client.get("/api/v1/me/balance", headers={"Authorization": f"Bearer {theirs}"})
    assert (await r1.json())["balance"]["minor"] == 1250
    assert (await r2.json())["balance"]["minor"] == -320
    assert (await r2.json())["status"] == "owed"
    # a scope the client lacks
    r = await api.client.get("/api/v1/me/plan", headers={"Authorization": f"Bearer {mine}"})
    assert r.status == 403 and (await r.json())["code"] == "insufficient_scope"
    # a client token is not a subscriber token, and the other way round
    r = await api.client.get(
        "/api/v1/me/balance", headers={"Authorization": f"Bearer {client_token}"}
    )
    assert r.status == 403 and (await r.json())["code"] == "wrong_token_type"
    r = await api.client.post(
        "/api/v1/auth/otp", json={"phone": PHONE}, headers={"Authorization": f"Bearer {mine}"}
    )
    assert r.status == 403 and (await r.json())["code"] == "wrong_token_type"
    # a forged token (signature changed)
    forged = mine[:-4] + ("AAAA" if not mine.endswith("AAAA") else "BBBB")
    r = await api.client.get("/api/v1/me/balance", headers={"Authorization": f"Bearer {forged}"})
    assert r.status == 401 and (await r.json())["code"] == "unauthorized"


async def test_wrong_secret_and_unknown_client_look_alike(api: Api) -> None:
    who = api.register("app", "balance:read")
    for ident, secret in ((who.client_id, "wrong"), ("cl_nobody", who.secret)):
        r = await api.client.post(
            "/api/v1/auth/client-token",
            json={"grant_type": "client_credentials", "client_id": ident, "client_secret": secret},
        )
        assert r.status == 401
        body = await r.json()
        assert body["code"] == "invalid_client" and "detail" not in body


async def test_client_revocation_is_at_once(api: Api) -> None:
    who = api.register("portal", "balance:read")
    client_token = await api.client_token(who)
    subscriber = await api.sign_in(client_token)
    headers = {"Authorization": f"Bearer {subscriber}"}
    assert (await api.client.get("/api/v1/me/balance", headers=headers)).status == 200
    status, out, _ = cli(api.config, "api", "clients", "revoke", "portal")
    assert status == 0 and "revoked" in out
    r = await api.client.get("/api/v1/me/balance", headers=headers)
    assert r.status == 401 and (await r.json())["code"] == "invalid_client"
    r = await api.client.post(
        "/api/v1/auth/otp",
        json={"phone": PHONE},
        headers={"Authorization": f"Bearer {client_token}"},
    )
    assert r.status == 401
    r = await api.client.post(
        "/api/v1/auth/client-token",
        json={
            "grant_type": "client_credentials",
            "client_id": who.client_id,
            "client_secret": who.secret,
        },
    )
    assert r.status == 401 and (await r.json())["code"] == "invalid_client"


async def test_sign_out_revokes_the_token_and_survives_a_redis_flush(
    tmp_path: Path, redis_url: str
) -> None:
    async with running(tmp_path, redis_url) as api:
        who = api.register("app", "balance:read")
        subscriber = await api.sign_in(await api.client_token(who))
        headers = {"Authorization": f"Bearer {subscriber}"}
        r = await api.client.post("/api/v1/auth/revoke", headers=headers)
        assert r.status == 200 and await r.json() == {"revoked": True}
        r = await api.client.get("/api/v1/me/balance", headers=headers)
        assert r.status == 401 and (await r.json())["code"] == "token_revoked"
    # Redis loses everything; the durable revocation is put back at the next start.
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    store.close()
    async with running(tmp_path, redis_url) as api:
        r = await api.client.get("/api/v1/me/balance", headers=headers)
        assert r.status == 401 and (await r.json())["code"] == "token_revoked"


async def test_otp_brute_force_locks_and_resend_is_throttled(api: Api) -> None:
    token = await api.client_token(api.register("app", "balance:read"))
    auth = {"Authorization": f"Bearer {token}"}
    r = await api.client.post("/api/v1/auth/otp", json={"phone": PHONE}, headers=auth)
    assert r.status == 202
    r = await api.client.post("/api/v1/auth/otp", json={"phone": PHONE}, headers=auth)
    assert r.status == 429 and (await r.json())["code"] == "resend_too_soon"
    assert 0 < int(r.headers["Retry-After"]) <= 60
    code = api.last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = await asyncio.gather(
        *(
            api.client.post(
                "/api/v1/auth/token", json={"phone": PHONE, "code": wrong}, headers=auth
            )
            for _ in range(5)
        )
    )
    codes = sorted([(await a.json())["code"] for a in answers])
    assert codes.count("invalid_code") == 4 and codes.count("code_locked") == 1, codes
    # even the right code is refused now, and no new code is sent while locked
    r = await api.client.post(
        "/api/v1/auth/token", json={"phone": PHONE, "code": code}, headers=auth
    )
    assert r.status == 429 and (await r.json())["code"] == "code_locked"
    r = await api.client.post("/api/v1/auth/otp", json={"phone": PHONE}, headers=auth)
    assert r.status == 429 and (await r.json())["code"] == "code_locked"
    assert len([row for row in api.outbox() if row["kind"] == "otp"]) == 1


async def test_no_oracle_on_unknown_numbers(api: Api) -> None:
    token = await api.client_token(api.register("app", "balance:read"))
    auth = {"Authorization": f"Bearer {token}"}
    known = await api.client.post("/api/v1/auth/otp", json={"phone": PHONE}, headers=auth)
    unknown = await api.client.post(
        "/api/v1/auth/otp", json={"phone": "+8613999999999"}, headers=auth
    )
    assert (known.status, await known.json()) == (unknown.status, await unknown.json())
    # after a correct code, the operator not knowing the number is a 404 on /me
    r = await api.client.post(
        "/api/v1/auth/token",
        json={"phone": "+8613999999999", "code": api.last_code("+8613999999999")},
        headers=auth,
    )
    me = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
    r = await api.client.get("/api/v1/me/balance", headers=me)
    assert r.status == 404 and (await r.json())["code"] == "subscriber_not_found"
