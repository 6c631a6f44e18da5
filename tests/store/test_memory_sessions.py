"""The in-process session store: TTLs, and sweeping that stays cheap with many sessions."""

from __future__ import annotations

from hotline.store.sessions import SWEEP_ABOVE, MemorySessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_expired_sessions_are_gone_and_swept() -> None:
    clock = Clock()
    store = MemorySessionStore(clock)
    for n in range(SWEEP_ABOVE):
        await store.save(f"s{n}", b"r", 10, "sub", None)
    await store.save("live", b"kept", 100, "sub", {"lang": "en"})
    assert await store.load("s0", "sub") == (b"r", {"lang": "en"})
    clock.now = 50.0
    await store.save("new", b"n", 10, "sub", None)  # over SWEEP_ABOVE: the expired go
    assert len(store._sessions) == 2
    assert await store.load("s1", "sub") == (None, {"lang": "en"})
    assert await store.load("live", "sub") == (b"kept", {"lang": "en"})
    assert await store.load("new", "sub") == (b"n", {"lang": "en"})


async def test_many_live_sessions_are_kept_and_not_rescanned_on_every_save() -> None:
    clock = Clock()
    store = MemorySessionStore(clock)
    for n in range(SWEEP_ABOVE + 2):
        await store.save(f"s{n}", b"r", 100, "sub", None)
    # The sweep found nothing expired; the next one waits until the live ones doubled.
    assert store._sweep_above == 2 * (SWEEP_ABOVE + 1)
    for n in range(SWEEP_ABOVE + 2, SWEEP_ABOVE + 100):
        await store.save(f"s{n}", b"r", 100, "sub", None)
    assert store._sweep_above == 2 * (SWEEP_ABOVE + 1)
    assert all([(await store.load(f"s{n}", "sub"))[0] == b"r" for n in range(SWEEP_ABOVE + 100)])
