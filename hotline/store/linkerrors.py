"""The errors `RedisLink` raises. They live apart from it because mypyc, which compiles
the link (setup.py), cannot compile a subclass of `ConnectionError`."""

from __future__ import annotations

__all__ = ["RedisLinkError", "RedisReplyError"]


class RedisLinkError(ConnectionError):
    """The server could not be reached, went away, or did not answer in time.

    `reconnect` is true when the connection was found closed (not slow): a new one may work.
    """

    def __init__(self, message: str, *, reconnect: bool = False) -> None:
        super().__init__(message)
        self.reconnect = reconnect


class RedisReplyError(Exception):
    """The server answered a command with an error reply (`-ERR …`)."""
