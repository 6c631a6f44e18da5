"""Registered flow actions: `kind: action` states name one of these.

`base` holds the contract (`ActionContext`, `ActionSpec`, the `ACTIONS` registry and the
`@action` decorator); every other module here is one action that registers itself when
this package is imported. A new action is one module plus its import line below.
"""

from hotline.flow.actions import (
    balance_lookup,
    call_agent_available,
    call_transfer,
    http_request,
    reminder_status,
    reminder_subscribe,
    reminder_unsubscribe,
    plan_current,
    plan_offers,
    plan_order,
    plan_pick,
    plan_quote,
    set_language,
    survey_score,
)
from hotline.flow.actions.balance_lookup import snapshot_variables
from hotline.flow.actions.base import (
    ACTIONS,
    ERROR,
    OK,
    Action,
    ActionContext,
    ActionRegistry,
    ActionSpec,
    ArgSpec,
    VariableType,
    action,
)
from hotline.flow.services import BalanceService, Services

__all__ = [
    "ACTIONS",
    "ERROR",
    "OK",
    "Action",
    "ActionContext",
    "ActionRegistry",
    "ActionSpec",
    "ArgSpec",
    "BalanceService",
    "Services",
    "VariableType",
    "action",
    "balance_lookup",
    "call_agent_available",
    "call_transfer",
    "http_request",
    "reminder_status",
    "reminder_subscribe",
    "reminder_unsubscribe",
    "plan_current",
    "plan_offers",
    "plan_order",
    "plan_pick",
    "plan_quote",
    "set_language",
    "snapshot_variables",
    "survey_score",
]
