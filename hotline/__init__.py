"""hotline: USSD + IVR self-service on one channel-neutral flow engine."""

__all__ = ["__version__"]

__version__ = "0.1.0"
