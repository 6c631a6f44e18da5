"""Error hierarchy: each error names whose fault it is and what the user gets."""

from __future__ import annotations

__all__ = [
    "BadGatewayRequest",
    "ClientAborted",
    "ConfigError",
    "FlowError",
    "FlowsRejected",
    "HotlineError",
    "InvalidUpstreamAnswer",
    "RateLimited",
    "SessionStoreUnavailable",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class HotlineError(Exception):
    """Root of every error hotline raises on purpose."""


class BadGatewayRequest(HotlineError):
    """The gateway or voice platform sent something we cannot act on (HTTP 400 with reason)."""

    status_hint = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClientAborted(HotlineError):
    """The client went away before its request was read (disconnected mid-body): nobody is
    left to answer. Not a bug: counted as a client abort and logged at INFO."""


class ConfigError(HotlineError):
    """A configuration value is wrong; the message is one line naming the key."""


class FlowError(HotlineError):
    """A flow or prompt catalog cannot be loaded; carries `file:line` and the rule broken
    (`code`, as `hotline flows check` prints it in brackets: `yaml`, `prompt-brace` …)."""

    def __init__(self, path: str, line: int, message: str, code: str = "load") -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message
        self.code = code


class FlowsRejected(HotlineError):
    """A flow reload failed `hotline flows check`'s rules; nothing was installed.

    `problems` are `file:line: message [rule]` lines; the message joins them.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


class SessionStoreUnavailable(HotlineError):
    """Redis (or whatever holds sessions) cannot be reached right now."""


class UpstreamError(HotlineError):
    """The balance provider could not give a trustworthy answer."""


class UpstreamTimeout(UpstreamError):
    """The balance provider did not answer within the deadline."""


class UpstreamUnavailable(UpstreamError):
    """The balance provider is down, refusing, or the circuit breaker is open."""


class InvalidUpstreamAnswer(UpstreamError):
    """The balance provider answered something that failed validation: never shown."""


class UpstreamNotFound(UpstreamError):
    """The balance provider does not know this subscriber."""


class RateLimited(UpstreamError):
    """This subscriber asked too often; they get a polite sentence, the upstream is spared."""
