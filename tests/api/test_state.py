"""The gate's one round trip: the script over hotline's link and the redis-py pipeline
(Sentinel and Cluster URLs) give the same answers, against a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.state import ApiState, GateAnswer, Window
from hotline.store.redislink import RedisLink, link_address
from hotline.store.redisurl import open_redis

NOW = 1_800_000_000.0  # the windows' numbering is fixed by the clock passed in


@pytest.fixture
async def states(redis_url: str) -> AsyncIterator[tuple[ApiState, ApiState]]:
    redis = open_redis(redis_url)
    address = link_address(redis_url)
    assert address is not None
    link = RedisLink(address)
    await redis.flushdb()
    try:
        yield ApiState(redis, "test", b"k", link), ApiState(redis, "test", b"k", None)
    finally:
        await link.close()
        await redis.aclose()


async def _gates(state: ApiState, env: str) -> list[GateAnswer]:
    """Three clients' calls: within, then over, the client rate (3/minute) and the
    subscriber rate (4/minute); one client and one token revoked half-way."""
    client_rate, subscriber_rate = Window(3, 60), Window(4, 60)
    answers = []
    for turn in range(6):
        if turn == 3:
            await state.revoke_client(f"{env}-c2", 60)
            await state.revoke_token(f"{env}-jti1", NOW + 3600)
        for client, jti, subscriber in (
            (f"{env}-c1", f"{env}-jti1", f"{env}-s1"),
            (f"{env}-c2", f"{env}-jti2", f"{env}-s1"),
            (f"{env}-c3", None, None),  # client credentials: no token, no subscriber
        ):
            answers.append(
                await state.gate(
                    client=client,
                    jti=jti,
                    client_rate=client_rate,
                    subscriber=subscriber,
                    subscriber_rate=subscriber_rate,
                    now=NOW + turn,
                )
            )
    return answers


async def test_script_and_pipeline_agree(states: tuple[ApiState, ApiState]) -> None:
    scripted, piped = states
    by_script = await _gates(scripted, "a")
    assert by_script == await _gates(piped, "b")
    first = by_script[0]
    assert first == GateAnswer(False, False, 0, 0)
    # the subscriber's fifth and sixth calls (turn 2) are over its rate; client 3 has none
    assert [a.subscriber_over > 0 for a in by_script[:9]] == [False] * 6 + [True, True, False]
    # turn 3: each client's fourth call is over; client 2 and token 1 are revoked
    assert by_script[9] == GateAnswer(False, True, 57, 57)
    assert by_script[10].client_revoked and not by_script[11].client_revoked
    assert all(a.client_over == 57 - t for t in range(3) for a in by_script[9 + 3 * t :][:3])


async def test_the_script_is_loaded_again_after_a_flush(
    states: tuple[ApiState, ApiState], redis_url: str
) -> None:
    scripted, _ = states

    async def gate(subscriber_rate: Window) -> GateAnswer:
        return await scripted.gate(
            client="c",
            jti="j",
            client_rate=Window(10, 60),
            subscriber="s",
            subscriber_rate=subscriber_rate,
            now=NOW,
        )

    assert (await gate(Window(10, 60))).client_over == 0
    redis = open_redis(redis_url)
    try:
        await redis.script_flush()  # as a restarted Redis: no script cached
    finally:
        await redis.aclose()
    assert await gate(Window(10, 60)) == GateAnswer(False, False, 0, 0)
    assert (await gate(Window(2, 60))).subscriber_over  # the third call counted
