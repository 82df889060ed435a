"""The scoring server: the reference model behind the SageMaker inference container contract.

`GET /ping` answers 200 once the model is loaded (the app is only built
around a loaded model); `POST /invocations` scores a payload as described in
`core/scoring.py`. Errors are RFC 9457 problem details: 415 for a body that
is not JSON, 400 for malformed JSON, 422 for a payload that does not
validate (every problem listed with its JSON path).
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudagent.core.bundle import json_path
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.scoring import InvocationRequest, InvocationResponse, cross_reference_problems
from fraudagent.risk.model import RiskModel

PROBLEM = "application/problem+json"


def create_scoring_app(model: RiskModel) -> FastAPI:
    app = FastAPI(title="fraudagent scoring", version=model.version, docs_url=None, redoc_url=None)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok", "model_version": model.version}

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        payload = _parse(request.headers.get("content-type", ""), await request.body())
        # Scoring is CPU-bound: keep it off the event loop so /ping stays responsive.
        response = await run_in_threadpool(_score, model, payload)
        return JSONResponse(response.model_dump(mode="json"))

    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, error: InvalidInput) -> JSONResponse:
        errors = [{"pointer": p.path, "detail": p.message} for p in error.problems]
        return _problem(422, "Invalid input", str(error), type_="/problems/invalid-input", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return _problem(error.status_code, _TITLES.get(error.status_code, "Error"), str(error.detail))

    return app


_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 415: "Unsupported media type"}


def _problem(status: int, title: str, detail: str, *, type_: str = "about:blank", **extra: object) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _parse(content_type: str, body: bytes) -> InvocationRequest:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise StarletteHTTPException(415, "send the payload as application/json")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StarletteHTTPException(400, f"the body is not valid JSON: {error}") from None
    try:
        request = InvocationRequest.model_validate(document)
    except ValidationError as error:
        problems = [
            Problem(json_path(tuple(e["loc"])), e["msg"]) for e in error.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput("the scoring payload did not validate", problems) from None
    problems = cross_reference_problems(request)
    if problems:
        raise InvalidInput("the scoring payload refers to missing records", problems)
    return request


def _score(model: RiskModel, request: InvocationRequest) -> InvocationResponse:
    accounts = {a.account_id: a for a in request.accounts}
    only = set(request.event_ids) if request.event_ids is not None else None
    scores = model.score_events(request.events, accounts, only=only)
    return InvocationResponse(model_version=model.version, scores=scores)
