"""USSD gateway dialects: one module per wire format, pure parse/reply functions."""

__all__: list[str] = []
