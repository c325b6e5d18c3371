"""A one-valued query parameter given twice is refused, not silently read as its last value.

Starlette keeps the last of ``?actor=a&actor=b``, so the API would answer for a filter the
client did not ask for alone. Which parameters may repeat is read from the API's own OpenAPI
document (an array, like ``station_id`` of ``/stats``), so the API refuses exactly what its
document does not allow.

It runs before the routes' own sign-in checks, so a visitor may see this 422 instead of a 401:
it names only what the request itself sent, against the public ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _is_array(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(_is_array(option) for option in schema.get("anyOf", schema.get("oneOf", [])))


def _one_valued(request: Request, route: APIRoute) -> set[str]:
    methods = request.app.openapi()["paths"].get(route.path_format, {})
    operation = methods.get(request.method.lower()) or methods.get("get", {})
    return {
        param["name"]
        for param in operation.get("parameters", [])
        if param["in"] == "query" and not _is_array(param.get("schema", {}))
    }


def one_value_each(request: Request) -> None:
    """422 naming every documented one-valued query parameter that the request repeats."""
    params = request.query_params
    repeated = {name for name in params if len(params.getlist(name)) > 1}
    route = request.scope.get("route")
    if not repeated or not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    errors = [
        {
            "type": "too_many_values",
            "loc": ("query", name),
            "msg": f"{name} takes one value; it was given {len(params.getlist(name))}",
            "input": params.getlist(name),
        }
        for name in sorted(repeated & _one_valued(request, route))
    ]
    if errors:
        raise RequestValidationError(errors)
