"""Typed services that actions use (DESIGN.md §13) — placeholder until the services slice lands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotline.balance.provider import BalanceProvider

__all__ = ["Services"]


@dataclass(frozen=True, slots=True)
class Services:
    balance: BalanceProvider | None = None
    #: Where `call.transfer` hands a call (`ivr.agent_number`); None: no agents.
    agent_number: str | None = None
