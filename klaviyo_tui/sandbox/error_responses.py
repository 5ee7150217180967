"""JSON:API error envelope and response helpers shared by every handler."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import Response

JSONAPI = "application/vnd.api+json"


class ApiError(Exception):
    """JSON:API errors sharing one HTTP status; handlers raise it, the app renders it."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
        more: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.headers = headers or {}
        first = error_object(status, code, title, detail, pointer=pointer, parameter=parameter)
        self.errors = [first, *(more or [])]


def error_object(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
) -> dict[str, Any]:
    """One `errors` entry: id (uuid), int status, code, title, detail, source, links, meta."""
    source: dict[str, str] = {}
    if parameter is not None:
        source["parameter"] = parameter
    else:
        source["pointer"] = pointer if pointer is not None else "/data"
    return {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
        "source": source,
        "links": {},
        "meta": {},
    }


def invalid(detail: str, *, pointer: str | None = None, parameter: str | None = None) -> ApiError:
    """400 `invalid`, the code Klaviyo uses for bad input."""
    return ApiError(400, "invalid", "Invalid input.", detail, pointer=pointer, parameter=parameter)


def not_found(detail: str) -> ApiError:
    return ApiError(404, "not_found", "Not found.", detail)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON:API response serialized with orjson."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSONAPI)


def error_response(err: ApiError) -> Response:
    return json_response({"errors": err.errors}, err.status, err.headers)
