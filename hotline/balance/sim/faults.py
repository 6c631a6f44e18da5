"""Fault rules of the billing simulator (reference §7.5): what to break, for whom, how often.

A rule is posted as JSON to `POST /_sim/faults`:

    {"fault": "status", "status": 503, "retry_after": 1,      # what (plus its parameters)
     "msisdn": "13800138000",                                 # optional: only this number
     "times": 3,                                              # optional: flap, fail N then pass
     "probability": 0.5,                                      # optional: seeded coin
     "after": 0, "duration": 5}                               # optional: outage window, s

The first matching rule wins. Parameters are checked here so a typo is a 400, not a
silently healthy simulator.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotline.balance.msisdn import canonical_msisdn

__all__ = ["FAULTS", "FaultRule", "FaultTable"]

# fault name → allowed parameters (beyond the common ones) and their variants
FAULTS: dict[str, dict[str, tuple[str, ...] | type]] = {
    "latency": {"ms": int, "jitter_ms": int},
    "hang": {},
    "slow_body": {"interval_ms": int},
    "reset": {"when": ("before", "mid")},
    "status": {"status": int, "retry_after": int},
    "rate_limit": {"retry_after": int},
    "html_error": {"status": int},
    "truncated_json": {"bytes": int},
    "invalid_json": {"variant": ("trailing_comma", "single_quotes", "nan")},
    "bad_encoding": {"variant": ("gbk", "invalid_utf8", "bom")},
    "empty_body": {},
    "wrong_types": {
        "variant": (
            "string_amount",
            "float_amount",
            "prefixed_amount",
            "bool",
            "null",
            "object",
            "minutes_string",
            "key_casing",
        )
    },
    "missing_field": {"field": ("as_of", "account_status", "remaining")},
    "extra_field": {},
    "unknown_enum": {"target": ("account", "money", "bucket")},
    "duplicate_keys": {},
    "out_of_range": {"variant": ("huge", "negative_data", "expiry_1970")},
    "time_formats": {"variant": ("no_offset", "epoch_s", "epoch_ms", "compact")},
    "business_error_200": {},
    "stale_as_of": {"seconds": int},
    "future_as_of": {"seconds": int},
    "outage": {"retry_after": int},
    "auth": {"variant": ("signature", "skew", "replay")},
}
_COMMON = {"fault", "msisdn", "times", "probability", "after", "duration"}


@dataclass(slots=True)
class FaultRule:
    id: int
    fault: str
    params: dict[str, Any]
    msisdn: str | None = None
    times: int | None = None
    probability: float = 1.0
    start: float | None = None
    end: float | None = None
    hits: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fault": self.fault,
            "params": self.params,
            "times_left": self.times,
            "hits": self.hits,
        }


def _number(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key}: expected a non-negative number")
    return float(value)


@dataclass(slots=True)
class FaultTable:
    """The active rules; `pick` is called once per balance request."""

    clock: Callable[[], float]
    rng: random.Random
    rules: list[FaultRule] = field(default_factory=list)
    _next_id: int = 1

    def add(self, doc: Any) -> FaultRule:
        if not isinstance(doc, Mapping):
            raise ValueError("expected a JSON object")
        name = doc.get("fault")
        if name not in FAULTS:
            raise ValueError(f"fault: one of {', '.join(sorted(FAULTS))}")
        allowed = FAULTS[name]
        params: dict[str, Any] = {}
        for key, value in doc.items():
            if key in _COMMON:
                continue
            if key not in allowed:
                raise ValueError(f"{key}: not a parameter of {name}")
            kind = allowed[key]
            if isinstance(kind, tuple):
                if value not in kind:
                    raise ValueError(f"{key}: one of {', '.join(kind)}")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key}: expected a non-negative integer")
            params[key] = value
        msisdn = doc.get("msisdn")
        times = _number(doc, "times")
        probability = _number(doc, "probability")
        after = _number(doc, "after")
        duration = _number(doc, "duration")
        now = self.clock()
        start = None if after is None and duration is None else now + (after or 0.0)
        rule = FaultRule(
            id=self._next_id,
            fault=name,
            params=params,
            msisdn=None if msisdn is None else canonical_msisdn(str(msisdn)),
            times=None if times is None else int(times),
            probability=1.0 if probability is None else min(probability, 1.0),
            start=start,
            end=None if duration is None or start is None else start + duration,
        )
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def pick(self, msisdn: str | None) -> FaultRule | None:
        now = self.clock()
        for rule in self.rules:
            if rule.msisdn is not None and rule.msisdn != msisdn:
                continue
            if rule.times is not None and rule.times <= 0:
                continue
            if rule.start is not None and now < rule.start:
                continue
            if rule.end is not None and now >= rule.end:
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            if rule.times is not None:
                rule.times -= 1
            rule.hits += 1
            return rule
        return None

    def clear(self) -> None:
        self.rules.clear()
