"""`/me/reminders`: read, set or change, and turn off the top-up reminder (充值提醒).

Through `Services.reminders` — the store USSD's menu 8, the voice menu and `KTTX 10` /
`QXTX` write — with `channel="api"` kept as the consent's proof. Amounts are integer
minor units like every API amount; the offered ones are `reminders.thresholds` (whole
元), and anything else is `invalid_threshold` naming them. Bundle rules (`rule`:
`data.low`/`voice.low` with `percent`, `bundle.expiry` with `days`) are set the same
way; `rules` lists every active rule; DELETE turns every reminder off, as `QXTX` does.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.errors import ApiError
from api.models import Amount
from api.resources.offers import amount
from api.routing import ApiCall, ApiRoute
from hotline.balance.msisdn import canonical_msisdn
from hotline.base.values import Count, Text, Value
from hotline.flow.screen import PromptPart
from hotline.flow.services import RemindersService
from hotline.i18n import TextFormatter

__all__ = ["ROUTES"]

_FORMAT = TextFormatter()
_ERRORS = ("subscriber_not_found",)


class ReminderSet(BaseModel):
    """Turn the reminder on, or change its amount."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["balance.low", "data.low", "voice.low", "bundle.expiry"] = Field(
        "balance.low", description="what to watch: the main balance, data, voice, bundle expiry"
    )
    threshold_minor: int | None = Field(
        None,
        ge=0,
        le=100_000_000,
        examples=[1000],
        description="balance.low: minor units (1000 is 10元), one of the answer's `choices`",
    )
    percent: int | None = Field(None, ge=0, le=100, description="data.low/voice.low: % left")
    days: int | None = Field(None, ge=0, le=365, description="bundle.expiry: days ahead")

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        """Exactly the field the rule reads: a body for another rule is a bad request."""
        wanted = {"balance.low": "threshold_minor", "bundle.expiry": "days"}.get(
            self.rule, "percent"
        )
        given = {
            name
            for name in ("threshold_minor", "percent", "days")
            if getattr(self, name) is not None
        }
        if given != {wanted}:
            raise ValueError(f"rule {self.rule} takes {wanted} (and nothing else)")
        return self


class ReminderBody(BaseModel):
    model_config = ConfigDict(frozen=True)

    active: bool
    threshold: Amount | None = Field(description="below this the subscriber gets one SMS")
    choices: list[Amount]
    keyword_off: str = Field(description="the SMS keyword that turns it off (QXTX)")
    rules: dict[str, int] = Field(
        default_factory=dict,
        description="active rules: balance.low in 元, data.low/voice.low in percent left, "
        "bundle.expiry in days ahead",
    )
    text: str = Field(description="the sentence USSD would show")
    language: str


def _service(call: ApiCall) -> RemindersService:
    service = call.ctx.services.reminders
    if service is None:
        raise ApiError("service_unavailable", "reminders are off on this server", retry_after=60)
    return service


def _body(
    call: ApiCall,
    service: RemindersService,
    threshold: int | None,
    key: str,
    rules: dict[str, int] | None = None,
) -> ReminderBody:
    currency = call.ctx.settings.reminders.currency
    values: dict[str, Value] = {"reminder_keyword": Text(service.keyword_off)}
    if threshold is not None:
        values["reminder_threshold"] = Count(threshold)
    catalog = call.ctx.catalogs[call.language]
    return ReminderBody(
        active=threshold is not None,
        threshold=None if threshold is None else amount(threshold * 100, currency, call.language),
        choices=[amount(t * 100, currency, call.language) for t in service.thresholds],
        keyword_off=service.keyword_off,
        rules=rules or {},
        text=catalog.render(PromptPart(key, values), _FORMAT),
        language=call.language,
    )


def _number_checked(call: ApiCall) -> str:
    try:
        canonical_msisdn(call.msisdn)
    except ValueError as exc:
        raise ApiError("subscriber_not_found") from exc
    return call.msisdn


async def get_reminder(call: ApiCall) -> ReminderBody:
    service = _service(call)
    rules = await service.rules_of(_number_checked(call))
    threshold = rules.get("balance.low")
    return _body(
        call,
        service,
        threshold,
        "reminder.none" if threshold is None else "reminder.current",
        rules,
    )


_BUNDLE_KEYS = {
    "data.low": "reminder.confirmed_data",
    "voice.low": "reminder.confirmed_voice",
    "bundle.expiry": "reminder.confirmed_expiry",
}


async def _set_bundle(call: ApiCall, service: RemindersService, body: ReminderSet) -> ReminderBody:
    field = "days" if body.rule == "bundle.expiry" else "percent"
    value = body.days if field == "days" else body.percent
    offered = service.choices(body.rule)
    choices = ", ".join(str(t) for t in offered)
    if value is None or value not in offered:
        raise ApiError(
            "invalid_threshold",
            f"{field} must be one of {choices} for {body.rule}",
            errors=[{"field": field, "reason": f"one of {choices}"}],
        )
    number = _number_checked(call)
    await service.subscribe(number, value, channel="api", language=call.language, rule=body.rule)
    answer = _body(call, service, None, "reminder.none", await service.rules_of(number))
    catalog = call.ctx.catalogs[call.language]
    values: dict[str, Value] = {
        "reminder_keyword": Text(service.keyword_off),
        "reminder_threshold": Count(value),
    }
    text = catalog.render(PromptPart(_BUNDLE_KEYS[body.rule], values), _FORMAT)
    return answer.model_copy(update={"text": text})


async def set_reminder(call: ApiCall) -> ReminderBody:
    service = _service(call)
    body = call.body
    assert isinstance(body, ReminderSet)
    if body.rule != "balance.low":
        return await _set_bundle(call, service, body)
    whole, rest = divmod(body.threshold_minor or 0, 100)
    choices = ", ".join(str(t * 100) for t in service.thresholds)
    if body.threshold_minor is None or rest or whole not in service.thresholds:
        raise ApiError(
            "invalid_threshold",
            f"threshold_minor must be one of {choices}",
            errors=[{"field": "threshold_minor", "reason": f"one of {choices}"}],
        )
    number = _number_checked(call)
    await service.subscribe(number, whole, channel="api", language=call.language)
    return _body(call, service, whole, "reminder.confirmed", await service.rules_of(number))


async def delete_reminder(call: ApiCall) -> ReminderBody:
    service = _service(call)
    await service.unsubscribe(_number_checked(call), channel="api")
    return _body(call, service, None, "reminder.stopped")


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "GET",
        "/me/reminders",
        "getReminder",
        "The top-up reminder: on or off, its amount, the amounts offered",
        get_reminder,
        ReminderBody,
        scope="reminders:read",
        errors=_ERRORS,
    ),
    ApiRoute(
        "PUT",
        "/me/reminders",
        "setReminder",
        "Turn a reminder on (balance, data, voice, bundle expiry), or change its threshold "
        "(consent kept as channel api)",
        set_reminder,
        ReminderBody,
        scope="reminders:write",
        body=ReminderSet,
        errors=(*_ERRORS, "invalid_threshold"),
    ),
    ApiRoute(
        "DELETE",
        "/me/reminders",
        "deleteReminder",
        "Turn every reminder off (idempotent: off stays off)",
        delete_reminder,
        ReminderBody,
        scope="reminders:write",
        errors=_ERRORS,
    ),
)
