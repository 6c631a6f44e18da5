"""Long-lived links to operator peers that more than one channel binds (SMPP)."""
