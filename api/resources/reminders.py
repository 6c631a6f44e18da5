"""`/me/reminders`: read, set or change, and turn off the top-up reminder (充值提醒).

Through `Services.reminders` — the store USSD's menu 8, the voice menu and `KTTX 10` /
`QXTX` write — with `channel="api"` kept as the consent's proof. Amounts are integer
minor units like every API amount; the offered ones are `reminders.thresholds` (whole
元), and anything else is `invalid_threshold` naming them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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

    threshold_minor: int = Field(
        ge=0,
        le=100_000_000,
        examples=[1000],
        description="minor units (1000 is 10元): one of the answer's `choices`",
    )


class ReminderBody(BaseModel):
    model_config = ConfigDict(frozen=True)

    active: bool
    threshold: Amount | None = Field(description="below this the subscriber gets one SMS")
    choices: list[Amount]
    keyword_off: str = Field(description="the SMS keyword that turns it off (QXTX)")
    text: str = Field(description="the sentence USSD would show")
    language: str


def _service(call: ApiCall) -> RemindersService:
    service = call.ctx.services.reminders
    if service is None:
        raise ApiError("service_unavailable", "reminders are off on this server", retry_after=60)
    return service


def _body(
    call: ApiCall, service: RemindersService, threshold: int | None, key: str
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
    threshold = await service.threshold_of(_number_checked(call))
    return _body(
        call, service, threshold, "reminder.none" if threshold is None else "reminder.current"
    )


async def set_reminder(call: ApiCall) -> ReminderBody:
    service = _service(call)
    body = call.body
    assert isinstance(body, ReminderSet)
    whole, rest = divmod(body.threshold_minor, 100)
    choices = ", ".join(str(t * 100) for t in service.thresholds)
    if rest or whole not in service.thresholds:
        raise ApiError(
            "invalid_threshold",
            f"threshold_minor must be one of {choices}",
            errors=[{"field": "threshold_minor", "reason": f"one of {choices}"}],
        )
    await service.subscribe(_number_checked(call), whole, channel="api", language=call.language)
    return _body(call, service, whole, "reminder.confirmed")


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
        "Turn the top-up reminder on, or change its amount (consent kept as channel api)",
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
        "Turn the top-up reminder off (idempotent: off stays off)",
        delete_reminder,
        ReminderBody,
        scope="reminders:write",
        errors=_ERRORS,
    ),
)
