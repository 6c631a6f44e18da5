"""What every layer shares: the call shape it wraps, and forwarding of `name` and `close`.

A layer wraps a `Call[T]` — anything with a `name`, `async fetch(key) -> T` and
`async close()` — and is one itself, so layers stack. The key is a string the caller
owns (a subscriber number, a plan id); layers that remember or count per key turn it
into a pseudonymous `Key` first, so nothing personal is stored or logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["Call", "FunctionCall", "Key", "Layer", "Monotonic", "T", "logger"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

Key = Callable[[str], str]
Monotonic = Callable[[], float]


class Call(Protocol[T_co]):
    """One service call that leaves the process: `fetch(key) -> T`."""

    @property
    def name(self) -> str: ...

    async def fetch(self, key: str, /) -> T_co: ...

    async def close(self) -> None: ...


class FunctionCall(Generic[T]):
    """A plain `async def (key) -> T` as a `Call[T]` (for services without a client object)."""

    def __init__(
        self,
        name: str,
        fetch: Callable[[str], Awaitable[T]],
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self._close = close

    async def fetch(self, key: str, /) -> T:
        return await self._fetch(key)

    async def close(self) -> None:
        if self._close is not None:
            await self._close()


def logger(service: str) -> logging.Logger:
    """The logger of one service's layers (`hotline.balance`, `hotline.plans`, …)."""
    return logging.getLogger(f"hotline.{service}")


class Layer(Generic[T]):
    """A wrapper that forwards `name` and `close` to the call it wraps."""

    def __init__(self, inner: Call[T]) -> None:
        self.inner = inner
        self.name = inner.name

    async def close(self) -> None:
        await self.inner.close()
