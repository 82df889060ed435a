"""Errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudagent.agent.scheduler import ModelBusy
from fraudagent.core.errors import Conflict, DependencyUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


class ProblemPointer(BaseModel):
    pointer: str
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemPointer] | None = None


def responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the problem responses a route can give."""
    described = {
        401: "no valid API key",
        403: "the key lacks the role",
        404: "not found",
        409: "conflicts with the current state",
        413: "request body too large",
        422: "invalid request",
        429: "rate limit exceeded (see Retry-After)",
        503: "a dependency is unavailable (see Retry-After)",
    }
    return {
        s: {
            "description": described[s],
            "model": Problem,
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


AUTHED = (401, 403, 413, 422, 429, 503)


def problem(status: int, title: str, detail: str, *, type_: str = "about:blank", **extra: object) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class BodyTooLarge(StarletteHTTPException):
    """A request body over the limit, found while it streamed in (no Content-Length, or a lying one)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def too_large(limit: int) -> JSONResponse:
    """The one 413 body, whether Content-Length said so up front or the streamed body passed the limit."""
    return problem(
        413, "Content Too Large", f"the request body is larger than {limit} bytes", type_="/problems/too-large"
    )


def install(app: FastAPI) -> None:
    _problem_media_only(app)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(_: Request, error: BodyTooLarge) -> JSONResponse:
        return too_large(error.limit)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return problem(404, f"{error.kind.capitalize()} not found", str(error), type_="/problems/not-found")

    @app.exception_handler(Conflict)
    async def conflict(_: Request, error: Conflict) -> JSONResponse:
        return problem(409, "Conflict", str(error), type_="/problems/conflict")

    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, error: InvalidInput) -> JSONResponse:
        errors = [{"pointer": p.path, "detail": p.message} for p in error.problems]
        return problem(422, "Invalid input", str(error), type_="/problems/invalid-input", errors=errors)

    @app.exception_handler(DependencyUnavailable)
    async def unavailable(_: Request, error: DependencyUnavailable) -> JSONResponse:
        log.warning("dependency unavailable: %s", error.service)
        response = problem(
            503, "Service unavailable", f"{error.service} is unavailable; retry later", type_="/problems/unavailable"
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(ModelBusy)
    async def busy(_: Request, error: ModelBusy) -> JSONResponse:
        response = problem(503, "Model busy", str(error), type_="/problems/model-busy")
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"pointer": "/".join(str(p) for p in e["loc"]), "detail": e["msg"]} for e in error.errors()]
        return problem(
            422, "Invalid request", "the request did not validate", type_="/problems/invalid-input", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        response = problem(error.status_code, _title(error.status_code), str(error.detail))
        for key, value in (error.headers or {}).items():
            response.headers[key] = value
        if (
            error.status_code == 405
        ):  # Starlette's Allow names only the first route on the path; GET and POST are two routes
            response.headers["Allow"] = ", ".join(_allowed_methods(request)) or response.headers.get("Allow", "")
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.error("unhandled %s", type(error).__name__, exc_info=error)
        return problem(500, "Internal Server Error", "an unexpected error; it was logged")


_UNREADABLE_BODY = {
    "description": "the request body cannot be decoded",
    "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _problem_media_only(app: FastAPI) -> None:
    """FastAPI documents every response `model` as application/json too; problems are only problem+json. Every
    operation with a body also documents the 400 FastAPI gives to a body it cannot decode."""
    generate = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    if (
                        "requestBody" in operation
                    ):  # FastAPI answers 400 to a body it cannot decode (bytes that are not UTF-8)
                        operation.setdefault("responses", {}).setdefault("400", _UNREADABLE_BODY)
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if PROBLEM in content:
                            content.pop("application/json", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path."""
    from starlette.routing import Match

    routes = request.app.router.routes
    return [
        m
        for m in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(route.matches({**request.scope, "method": m})[0] is Match.FULL for route in routes)
    ]


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
