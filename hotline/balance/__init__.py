"""Balance providers (`ledger`, `http`), the normalized snapshot, and the resilience layers."""

from hotline.balance.model import BalanceSnapshot, Bucket, Quantity
from hotline.balance.provider import BalanceProvider, open_provider

__all__ = ["BalanceProvider", "BalanceSnapshot", "Bucket", "Quantity", "open_provider"]
