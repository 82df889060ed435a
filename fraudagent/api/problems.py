"""Errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudagent.core.errors import DependencyUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, *, type_: str = "about:blank", **extra: object) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return problem(404, f"{error.kind.capitalize()} not found", str(error), type_="/problems/not-found")

    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, error: InvalidInput) -> JSONResponse:
        errors = [{"pointer": p.path, "detail": p.message} for p in error.problems]
        return problem(422, "Invalid input", str(error), type_="/problems/invalid-input", errors=errors)

    @app.exception_handler(DependencyUnavailable)
    async def unavailable(_: Request, error: DependencyUnavailable) -> JSONResponse:
        log.warning("dependency unavailable: %s", error.service)
        response = problem(503, "Service unavailable", f"{error.service} is unavailable; retry later", type_="/problems/unavailable")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"pointer": "/".join(str(p) for p in e["loc"]), "detail": e["msg"]} for e in error.errors()]
        return problem(422, "Invalid request", "the request did not validate", type_="/problems/invalid-input", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        response = problem(error.status_code, _title(error.status_code), str(error.detail))
        for key, value in (error.headers or {}).items():
            response.headers[key] = value
        return response


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
