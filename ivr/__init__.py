"""The voice channel: call the hotline, press keys, hear your balance (DESIGN.md §9)."""

__all__: list[str] = []
