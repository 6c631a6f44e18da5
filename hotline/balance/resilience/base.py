"""What every layer shares: the provider shape it wraps and forwarding of `close`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from hotline.balance.model import BalanceSnapshot

__all__ = ["Inner", "Key", "Layer", "Monotonic", "log"]

log = logging.getLogger("hotline.balance")

Key = Callable[[str], str]
Monotonic = Callable[[], float]


class Inner(Protocol):
    """The provider a layer wraps (the `BalanceProvider` shape)."""

    name: str

    async def fetch(self, msisdn: str) -> BalanceSnapshot: ...

    async def close(self) -> None: ...


class Layer:
    """A wrapper that forwards `name` and `close` to the provider it wraps."""

    def __init__(self, inner: Inner) -> None:
        self.inner = inner
        self.name = inner.name

    async def close(self) -> None:
        await self.inner.close()
