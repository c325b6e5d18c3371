"""What the API refuses in any request's parameters before a route reads them.

- A one-valued query parameter given twice. Starlette keeps the last of ``?actor=a&actor=b``,
  so the API would answer for a filter the client did not ask for alone. Which parameters may
  repeat is read from the API's own OpenAPI document (an array, like ``station_id`` of
  ``/stats``), so the API refuses exactly what its document does not allow.
- A NUL character in the path or a query parameter: no station id, name or filter has one,
  and PostgreSQL cannot even compare text with it (the query failed: a 500, not a 404).

These run before the routes' own sign-in checks, so a visitor may see a 422 instead of a 401:
it names only what the request itself sent, against the public ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
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


def check_parameters(request: Request) -> None:
    """422 naming what breaks the rules above, for the API's documented routes."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    _no_nul(request)
    _one_value_each(request, route)


def _no_nul(request: Request) -> None:
    errors = [
        {"type": "nul_character", "loc": ("query", name), "msg": f"{name} contains a NUL"}
        for name, value in request.query_params.multi_items()
        if "\x00" in name or "\x00" in value
    ]
    if "\x00" in request.scope["path"]:  # percent-decoded
        errors.append({"type": "nul_character", "loc": ("path",), "msg": "the path has a NUL"})
    if errors:
        raise RequestValidationError(errors)


def _one_value_each(request: Request, route: APIRoute) -> None:
    params = request.query_params
    repeated = {name for name in params if len(params.getlist(name)) > 1}
    if not repeated:
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


# PostgreSQL refuses NUL in text: a pattern that says so, for parameters and form fields.
NO_NUL = r"^[^\x00]*$"


def document_rules(app: FastAPI) -> None:
    """Say in the OpenAPI document what :func:`check_parameters` refuses: every string
    parameter without a pattern of its own gets one that excludes NUL."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        schema = build()
        if first:
            for operations in schema["paths"].values():
                for operation in operations.values():
                    for param in operation.get("parameters", []):
                        _exclude_nul(param.get("schema", {}))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _exclude_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        schema["pattern"] = NO_NUL
    for option in schema.get("anyOf", []):
        _exclude_nul(option)
    if isinstance(schema.get("items"), dict):
        _exclude_nul(schema["items"])
