"""USSD channel: gateway dialects, text rendering with an encoding-aware budget, routes."""

__all__: list[str] = []
