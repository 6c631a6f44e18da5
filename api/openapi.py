"""The OpenAPI 3.1 document, generated from the routes (`api.routing`), the bodies'
pydantic models and the error table, so it cannot drift from the code."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.errors import ERRORS, PROBLEM_TYPE
from api.models import Problem
from api.routing import PREFIX, ApiRoute

__all__ = ["SCOPES", "document", "route_errors"]

#: Scopes a client may be granted; a later resource module adds its own here.
SCOPES: dict[str, str] = {
    "balance:read": "read the signed-in subscriber's main balance",
    "allowances:read": "read the signed-in subscriber's data, voice and SMS allowances",
    "plan:read": "read the signed-in subscriber's plan and buckets",
    "offers:read": "list the plans and bundles the signed-in subscriber may order",
    "orders:write": "order a plan or bundle for the signed-in subscriber (money moves)",
    "orders:read": "read the signed-in subscriber's own orders",
    "reminders:read": "read the signed-in subscriber's top-up reminder",
    "reminders:write": "turn the signed-in subscriber's top-up reminder on, change or off it",
}
_PATH_PARAMETER = re.compile(r"\{([a-z_]+)\}")
_BODY_ERRORS = ("bad_request", "payload_too_large", "unsupported_media_type")
#: Any call with a token may meet these (api.pipeline's checks).
_AUTH_ERRORS = (
    "unauthorized",
    "wrong_token_type",
    "invalid_client",
    "token_revoked",
    "rate_limited",
)


def route_errors(route: ApiRoute) -> tuple[str, ...]:
    """Every error code this operation may answer with."""
    codes: list[str] = ["internal", "service_unavailable"]
    if route.auth != "none":
        codes.extend(_AUTH_ERRORS)
    if route.scope is not None:
        codes.append("insufficient_scope")
    if route.body is not None:
        codes.extend(_BODY_ERRORS)
    codes.extend(route.errors)
    return tuple(dict.fromkeys(codes))


def _schemas(routes: Sequence[ApiRoute]) -> dict[str, Any]:
    models: list[type[BaseModel]] = [Problem]
    for route in routes:
        models.append(route.answer)
        if route.body is not None:
            models.append(route.body)
    unique = list(dict.fromkeys(models))
    _, top = models_json_schema(
        [(m, "validation" if _is_request(m, routes) else "serialization") for m in unique],
        ref_template="#/components/schemas/{model}",
    )
    return dict(top.get("$defs", {}))


def _is_request(model: type[BaseModel], routes: Sequence[ApiRoute]) -> bool:
    return any(route.body is model for route in routes)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(route: ApiRoute) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(route.status): {
            "description": "OK",
            "content": {"application/json": {"schema": _ref(route.answer)}},
        }
    }
    by_status: dict[int, list[str]] = {}
    for code in route_errors(route):
        by_status.setdefault(ERRORS[code].status, []).append(code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = {
            "description": "Problem: " + ", ".join(f"`{c}`" for c in codes),
            "content": {PROBLEM_TYPE: {"schema": _ref(Problem)}},
        }
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": [
            {
                "name": "Accept-Language",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "zh-CN or en for display strings and error titles",
            }
        ],
        "responses": responses,
        "x-error-codes": list(route_errors(route)),
    }
    for name in _PATH_PARAMETER.findall(route.path):
        operation["parameters"].append(
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    extra = dict(route.extra)
    operation["parameters"].extend(extra.pop("parameters", ()))
    operation.update(extra)
    if route.description:
        operation["description"] = route.description
    if route.auth == "none":
        operation["security"] = []
    elif route.auth == "client":
        operation["security"] = [{"clientToken": []}]
    else:
        operation["security"] = [{"subscriberToken": [route.scope] if route.scope else []}]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    return operation


def document(routes: Sequence[ApiRoute], *, version: str = "1.0.0") -> dict[str, Any]:
    """The whole document for these routes."""
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hotline API",
            "version": version,
            "description": (
                "Balance, allowances and plan for apps, mini-programs and the portal: the "
                "numbers USSD shows. Errors are RFC 9457 problem details whose `code` is "
                "one of `x-error-codes` (docs/api.md)."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "auth", "description": "client credentials and subscriber sign-in"},
            {"name": "me", "description": "the signed-in subscriber's own data"},
        ],
        "paths": paths,
        "components": {
            "schemas": _schemas(routes),
            "securitySchemes": {
                "clientToken": {
                    "type": "oauth2",
                    "description": "OAuth 2.0 client credentials (JSON body), a Bearer JWT",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{PREFIX}/auth/client-token",
                            "scopes": SCOPES,
                        }
                    },
                },
                "subscriberToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "from POST /api/v1/auth/token after the SMS code",
                },
            },
        },
        "x-error-codes": [
            {
                "code": code,
                "status": row.status,
                "en": row.en,
                "zh": row.zh,
                "action": row.action,
            }
            for code, row in ERRORS.items()
        ],
    }
