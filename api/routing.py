"""Routes as data: each API operation is one `ApiRoute`, found through entry points.

A resource module holds `ROUTES: tuple[ApiRoute, ...]` and is named in the `hotline.api`
entry-point group (pyproject.toml); the channel mounts every route under `/api/v1`,
wraps it in the one pipeline (`api.pipeline`: authentication, scope, limits, body,
errors, metrics, audit) and the OpenAPI document is generated from the same objects. A
later issue adds `/me/offers` as one module and one entry-point line:

    [project.entry-points."hotline.api"]
    offers = "plans.api:ROUTES"
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from hotline.base.errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

    from api.context import ApiContext
    from api.tokens import Claims

__all__ = ["ENTRY_POINT_GROUP", "PREFIX", "ApiCall", "ApiRoute", "installed_routes"]

ENTRY_POINT_GROUP = "hotline.api"
PREFIX = "/api/v1"
Auth = Literal["none", "client", "subscriber"]


@dataclass(slots=True)
class ApiCall:
    """One request as a handler sees it, after the pipeline's checks passed."""

    request: web.Request
    ctx: ApiContext
    language: str
    claims: Claims | None = None
    body: BaseModel | None = None
    #: The subscriber's pseudonym, once known (audit, limits).
    subscriber: str | None = None
    #: The client a token-less call is about (client credentials), once verified.
    client_id: str | None = None
    client_name: str | None = None

    @property
    def msisdn(self) -> str:
        """The signed-in subscriber's number (subscriber routes only)."""
        assert self.claims is not None and self.claims.msisdn is not None
        return self.claims.msisdn


#: A handler answers with its model, or with a plain dict of the model's fields (the
#: hot `/me/*` reads: `api.models`' `…Json` types), which the pipeline encodes as it is.
Handler = Callable[[ApiCall], Awaitable[BaseModel | Mapping[str, object]]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One operation: method and path (under `/api/v1`), who may call it, its bodies."""

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    name: str  # the operationId, also the metrics/audit endpoint name
    summary: str
    handler: Handler
    answer: type[BaseModel]
    auth: Auth = "subscriber"
    scope: str | None = None
    body: type[BaseModel] | None = None
    status: int = 200
    #: Error codes this operation may answer besides the ones every call may.
    errors: tuple[str, ...] = ()
    tag: str = "me"
    description: str = ""
    #: Merged into the OpenAPI operation; `parameters` (e.g. a header) are appended.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return PREFIX + self.path


@cache
def installed_routes() -> tuple[ApiRoute, ...]:
    """Every route of every `hotline.api` entry point, sorted by path; a duplicate
    method and path or a module without `ApiRoute`s is a packaging mistake."""
    found: dict[tuple[str, str], ApiRoute] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        routes = point.load()
        if not isinstance(routes, tuple) or not all(isinstance(r, ApiRoute) for r in routes):
            raise ConfigError(f"api routes {point.name} ({point.value}): expected ApiRoutes")
        for route in routes:
            key = (route.method, route.path)
            if key in found:
                raise ConfigError(f"api routes {point.name}: {route.method} {route.path} twice")
            found[key] = route
    return tuple(sorted(found.values(), key=lambda r: (r.path, r.method)))
