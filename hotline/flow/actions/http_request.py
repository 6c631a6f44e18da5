"""`http.request`: call a declared endpoint, map its JSON answer to typed variables.

A flow author calls an HTTP API with no Python: the endpoint is named in the
configuration (`http_endpoints.<name>`: URL, auth, timeout), the state says what to send
and what to read back. All of the answer's declared fields are read, with their types,
before any variable is set: an answer that does not match is the `error` outcome, never
a half-filled screen. Error codes the upstream answers (`{"code": "CARD_USED"}`, with a
4xx status or a 2xx one) become outcomes the state's `on:` routes.

Args (checked by `hotline flows check`, `[action-args]`, and `[unknown-service]` for an
endpoint the configuration does not declare):

- `endpoint`: a name under `http_endpoints`;
- `send`: JSON field → variable (`{card: card}`), or a list of variables sent under their
  own names; `"@subscriber"` sends the caller's number (E.164); a secret input is sent
  too (it is never stored);
- `receive`: variable → `"field:type"`, the field a dotted path in the answer
  (`account.balance`), the type one of money (`{"amount_minor": 1250, "currency":
  "CNY"}`), int, text, digits, date (`"2026-12-31"`), volume (bytes), duration (seconds);
- `errors`: answer code → outcome (`{CARD_USED: card_used}`).

Outcomes: `ok`; each outcome named in `errors`; `timeout` (no answer within the
endpoint's `timeout`: the call may or may not have taken effect); `limited` (this
subscriber called too often); `error` (anything else: down, circuit open, an answer
that does not match, an error code not named).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any, get_args

from hotline.base.errors import RateLimited, UpstreamError, UpstreamTimeout
from hotline.base.privacy import canonical_msisdn
from hotline.base.values import (
    Count,
    Date,
    Digits,
    Duration,
    Money,
    Msisdn,
    Text,
    Value,
    Volume,
    decode_value,
    encode_value,
)
from hotline.flow.actions.base import (
    ERROR,
    OK,
    ActionContext,
    ArgIssue,
    ArgSpec,
    CheckEnv,
    VariableType,
    action,
)

__all__ = ["RECEIVE_TYPES", "SUBSCRIBER", "http_request", "read_answer"]

log = logging.getLogger(__name__)

#: A `send:` value that means the caller's number rather than a variable.
SUBSCRIBER = "@subscriber"
#: Outcomes this action answers by itself; `errors:` may not reuse them.
_OWN = ("ok", "error", "timeout", "limited")
_VAR = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}(\.[A-Za-z_][A-Za-z0-9_-]{0,63}){0,7}$")
_OUTCOME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_TEXT = 160
_MAX_MINOR = 10**12


class _Mismatch(ValueError):
    """The answer does not match the declared `receive:`."""


def _money(raw: Any) -> Value:
    if not isinstance(raw, Mapping) or set(raw) != {"amount_minor", "currency"}:
        raise _Mismatch('expected {"amount_minor": …, "currency": …}')
    minor, currency = raw["amount_minor"], raw["currency"]
    if isinstance(minor, bool) or not isinstance(minor, int) or abs(minor) > _MAX_MINOR:
        raise _Mismatch("amount_minor is not an integer in range")
    if not isinstance(currency, str):
        raise _Mismatch("currency is not text")
    try:
        return Money(minor, currency)
    except ValueError as exc:
        raise _Mismatch(str(exc)) from exc


def _count(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) > _MAX_MINOR:
        raise _Mismatch("expected an integer")
    return raw


def _natural(raw: Any) -> int:
    value = _count(raw)
    if value < 0:
        raise _Mismatch("expected an integer >= 0")
    return value


def _text(raw: Any) -> Value:
    if not isinstance(raw, str) or not 0 < len(raw) <= _MAX_TEXT:
        raise _Mismatch(f"expected text of 1 to {_MAX_TEXT} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in raw):
        raise _Mismatch("text holds control characters")
    return Text(raw)


def _digits(raw: Any) -> Value:
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,64}", raw):
        raise _Mismatch("expected a string of 1 to 64 digits")
    return Digits(raw)


def _date(raw: Any) -> Value:
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
        raise _Mismatch("expected a date YYYY-MM-DD")
    try:
        return Date(dt.date.fromisoformat(raw))
    except ValueError as exc:
        raise _Mismatch("not a calendar date") from exc


#: `receive:` types and how each reads its JSON.
_READERS: dict[str, Callable[[Any], Value]] = {
    "money": _money,
    "int": lambda raw: Count(_count(raw)),
    "text": _text,
    "digits": _digits,
    "date": _date,
    "volume": lambda raw: Volume(_natural(raw)),
    "duration": lambda raw: Duration(_natural(raw)),
}
RECEIVE_TYPES = tuple(_READERS)
assert set(RECEIVE_TYPES) <= set(get_args(VariableType))


def _receive(args: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """`receive:` as var → (field path, type), skipping what does not parse."""
    found: dict[str, tuple[str, str]] = {}
    spec = args.get("receive")
    if not isinstance(spec, Mapping):
        return found
    for var, text in spec.items():
        if not isinstance(text, str):
            continue
        field, _, kind = text.rpartition(":")
        if _VAR.match(var) and _FIELD.match(field) and kind in _READERS:
            found[var] = (field, kind)
    return found


def _send(args: Mapping[str, Any]) -> dict[str, str]:
    """`send:` as JSON field → variable (or `@subscriber`)."""
    spec = args.get("send")
    if isinstance(spec, list):
        return {str(name): str(name) for name in spec}
    if isinstance(spec, Mapping):
        return {str(field): str(var) for field, var in spec.items()}
    return {}


def _field(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, Mapping) or part not in doc:
            raise _Mismatch("missing")
        doc = doc[part]
    return doc


def read_answer(body: Any, receive: Mapping[str, tuple[str, str]]) -> dict[str, Value]:
    """Every declared field of an answer as its typed value (pure); raises `ValueError`
    naming the first field that is missing or not of its type."""
    if not isinstance(body, Mapping):
        raise ValueError("$: the answer is not a JSON object")
    values: dict[str, Value] = {}
    for var, (path, kind) in receive.items():
        try:
            values[var] = _READERS[kind](_field(body, path))
        except _Mismatch as exc:
            raise ValueError(f"$.{path} ({kind}): {exc}") from None
    return values


def _sets_of(args: Mapping[str, Any]) -> Mapping[str, VariableType]:
    kinds: dict[str, VariableType] = {
        "money": "money",
        "int": "int",
        "text": "text",
        "digits": "digits",
        "date": "date",
        "volume": "volume",
        "duration": "duration",
    }
    return {var: kinds[kind] for var, (_, kind) in _receive(args).items()}


def _check_args(args: Mapping[str, Any], env: CheckEnv) -> Iterator[ArgIssue]:
    endpoint = args.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        yield ArgIssue("action-args", "http.request needs `endpoint:`, a configured name")
    elif env.endpoints is not None and endpoint not in env.endpoints:
        declared = ", ".join(sorted(env.endpoints)) or "none"
        yield ArgIssue(
            "unknown-service",
            f"http.request names endpoint {endpoint!r}, which the configuration does not "
            f"declare (http_endpoints: {declared})",
            ("endpoint",),
        )
    for name in args:
        if name not in ("endpoint", "send", "receive", "errors"):
            yield ArgIssue(
                "action-args",
                f"http.request has no argument {name!r} (endpoint, send, receive, errors)",
                (name,),
            )
    send = args.get("send", {})
    if not isinstance(send, list | Mapping):
        yield ArgIssue(
            "action-args", "`send:` is a mapping of field: variable, or a list", ("send",)
        )
    for field, var in _send(args).items():
        if not (_VAR.match(var) or var == SUBSCRIBER):
            yield ArgIssue(
                "action-args",
                f"`send:` {field!r} names {var!r}: a variable, or {SUBSCRIBER}",
                ("send", field) if isinstance(send, Mapping) else ("send",),
            )
    receive = args.get("receive", {})
    if not isinstance(receive, Mapping):
        yield ArgIssue(
            "action-args", "`receive:` is a mapping of variable: 'field:type'", ("receive",)
        )
    else:
        parsed = _receive(args)
        for var, text in receive.items():
            if var not in parsed:
                yield ArgIssue(
                    "action-args",
                    f"`receive:` {var}: {text!r} is not `variable: 'field:type'` with type one "
                    f"of {', '.join(RECEIVE_TYPES)}",
                    ("receive", var),
                )
    errors = args.get("errors", {})
    if not isinstance(errors, Mapping):
        yield ArgIssue("action-args", "`errors:` is a mapping of answer code: outcome", ("errors",))
    else:
        for code, outcome in errors.items():
            if not _CODE.match(code) or not _OUTCOME.match(outcome) or outcome in _OWN:
                yield ArgIssue(
                    "action-args",
                    f"`errors:` {code}: {outcome!r} maps an answer code to an outcome name "
                    f"(a-z, 0-9, _; not {', '.join(_OWN)})",
                    ("errors", code),
                )


def _payload(ctx: ActionContext) -> dict[str, Any] | None:
    """The JSON to send; None when a variable to send is not set."""
    payload: dict[str, Any] = {}
    for field, var in _send(ctx.args).items():
        if var == SUBSCRIBER:
            try:
                payload[field] = "+" + canonical_msisdn(ctx.subscriber)
            except ValueError:
                return None
            continue
        raw = ctx.secrets.get(var, ctx.variables.get(var))
        if raw is None:
            return None
        payload[field] = _plain(raw)
    return payload


def _plain(raw: Any) -> Any:
    """A session variable as JSON: typed values in their wire form, the rest as stored."""
    if not isinstance(raw, dict):
        return raw
    try:
        value = decode_value(raw)
    except ValueError:
        return None
    match value:
        case Money(minor, currency, _):
            return {"amount_minor": minor, "currency": currency}
        case Count(number) | Volume(number) | Duration(number):
            return number
        case Date(day):
            return day.isoformat()
        case Text(text) | Digits(text) | Msisdn(text):
            return text
    return None


def _code(body: Any) -> str | None:
    code = body.get("code") if isinstance(body, Mapping) else None
    return code if isinstance(code, str) else None


@action(
    "http.request",
    args=(
        ArgSpec("endpoint", "str", doc="a name under `http_endpoints` in the configuration"),
        ArgSpec("send", "map", False, "JSON field → variable (or @subscriber)"),
        ArgSpec("receive", "map", False, "variable → 'field:type' read from the answer"),
        ArgSpec("errors", "map", False, "answer code → outcome"),
    ),
    outcomes=("timeout", "limited"),
    sets_of=_sets_of,
    check_args=_check_args,
)
async def http_request(ctx: ActionContext) -> str:
    """Call a declared endpoint; the answer's fields become typed variables.

    Outcomes: `ok`, each outcome named in `errors:`, `timeout`, `limited`, `error`.

    ```yaml
    do_topup:
      kind: action
      action: http.request
      args:
        endpoint: topup
        send: { card: card, msisdn: "@subscriber" }
        receive: { credited: "credited:money", new_balance: "balance:money" }
        errors: { INVALID_CARD: invalid_card, CARD_USED: card_used }
      next: topped_up
      on: { invalid_card: bad_card, card_used: used_card, timeout: topup_unknown }
      on_error: topup_failed
    ```
    """
    service = ctx.services.http
    endpoint = ctx.args.get("endpoint")
    receive = _receive(ctx.args)
    for var in receive:  # nothing left from an earlier call in this session
        ctx.variables.pop(var, None)
        ctx.values.pop(var, None)
    payload = _payload(ctx)
    if service is None or not isinstance(endpoint, str) or payload is None:
        log.info("http.request: no service, endpoint or variable to send")
        return ERROR
    try:
        answer = await service.call(endpoint, ctx.subscriber, payload)
    except UpstreamTimeout:
        return "timeout"
    except RateLimited:
        return "limited"
    except UpstreamError as exc:
        log.info("http.request %s failed: %s", endpoint, type(exc).__name__)
        return ERROR
    errors = ctx.args.get("errors")
    code = _code(answer.body)
    if isinstance(errors, Mapping) and code is not None and code in errors:
        return str(errors[code])
    if not 200 <= answer.status < 300:
        log.info("http.request %s answered HTTP %d (%s)", endpoint, answer.status, code or "-")
        return ERROR
    try:
        values = read_answer(answer.body, receive)
    except ValueError as exc:
        log.warning("http.request %s: the answer does not match `receive:`: %s", endpoint, exc)
        return ERROR
    for var, value in values.items():
        ctx.variables[var] = encode_value(value)
        ctx.values[var] = value
    return OK
