"""Bad input gets the documented error code in the one problem shape, never a 500."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import PHONE, Api


async def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = await response.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"/api/v1/docs#error-{code}"
    assert "Traceback" not in str(body)
    return body


async def test_malformed_requests(api: Api) -> None:
    token = await api.client_token(api.register("app", "balance:read"))
    auth = {"Authorization": f"Bearer {token}"}
    post = api.client.post
    url = "/api/v1/auth/otp"
    body = await _problem(
        await post(url, data=b"{not json", headers={**auth, "Content-Type": "application/json"}),
        400,
        "bad_request",
    )
    assert body["detail"] == "the body is not JSON"
    await _problem(
        await post(url, data=b"[1]", headers={**auth, "Content-Type": "application/json"}),
        400,
        "bad_request",
    )
    body = await _problem(
        await post(url, json={"phone": PHONE, "admin": True}, headers=auth), 400, "bad_request"
    )
    assert body["errors"] == [{"field": "admin", "reason": "Extra inputs are not permitted"}]
    body = await _problem(await post(url, json={}, headers=auth), 400, "bad_request")
    assert body["errors"][0]["field"] == "phone"
    await _problem(
        await post(url, data="phone=1", headers={**auth, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    huge = b'{"phone": "' + b"1" * 20_000 + b'"}'
    await _problem(
        await post(url, data=huge, headers={**auth, "Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )
    body = await _problem(
        await post("/api/v1/auth/token", json={"phone": PHONE, "code": "12345"}, headers=auth),
        400,
        "bad_request",
    )
    assert body["errors"][0]["field"] == "code"


async def test_missing_and_bad_credentials(api: Api) -> None:
    get = api.client.get
    r = await get("/api/v1/me/balance")
    await _problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    await _problem(
        await get("/api/v1/me/balance", headers={"Authorization": "Basic eDp5"}),
        401,
        "unauthorized",
    )
    await _problem(
        await get("/api/v1/me/balance", headers={"Authorization": "Bearer a.b.c"}),
        401,
        "unauthorized",
    )
    await _problem(
        await api.client.post(
            "/api/v1/auth/client-token",
            json={"grant_type": "password", "client_id": "x", "client_secret": "y"},
        ),
        400,
        "bad_request",
    )


async def test_unknown_paths_and_methods_in_english(api: Api) -> None:
    en = {"Accept-Language": "en"}
    body = await _problem(await api.client.get("/api/v1/nothing", headers=en), 404, "not_found")
    assert body["title"] == "No such endpoint."
    r = await api.client.delete("/api/v1/me/balance", headers=en)
    await _problem(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]
    zh = await _problem(await api.client.get("/api/v1/nothing"), 404, "not_found")
    assert zh["title"] == "接口不存在。"


async def test_without_redis_the_api_says_unavailable(tmp_path: Any) -> None:
    from tests.api.conftest import running

    async with running(tmp_path, None) as api:
        r = await api.client.post("/api/v1/auth/h5")
        await _problem(r, 503, "service_unavailable")
        assert (await api.client.get("/api/v1/openapi.json")).status == 200


async def test_h5_off(tmp_path: Any, redis_url: str) -> None:
    from tests.api.conftest import running

    async with running(tmp_path, redis_url, api={"h5": False}) as api:
        assert (await api.client.get("/h5")).status == 404
        await _problem(await api.client.post("/api/v1/auth/h5"), 404, "not_found")
