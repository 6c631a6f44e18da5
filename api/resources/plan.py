"""`/me/plan`: what the balance provider knows of the subscriber's plan today — account
and payment type, credit limit and every bucket. Plan-change offers and orders come as
their own modules (`/me/offers`, `/me/orders`; docs/api.md, "Adding a resource")."""

from __future__ import annotations

from api.models import PlanBody, PlanJson
from api.resources.balance import ME_ERRORS, snapshot
from api.routing import ApiCall, ApiRoute
from api.views import plan_body

__all__ = ["ROUTES"]


async def get_plan(call: ApiCall) -> PlanJson:
    found, fresh = await snapshot(call)
    return plan_body(found, fresh, call.ctx.catalogs[call.language])


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute(
        "GET",
        "/me/plan",
        "getPlan",
        "The plan as the balance provider knows it: account, payment type, buckets",
        get_plan,
        PlanBody,
        scope="plan:read",
        errors=ME_ERRORS,
    ),
)
