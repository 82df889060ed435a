"""/healthz (alive; no key), /readyz (dependencies reachable; no key, for orchestrators) and /metrics
(Prometheus text; an admin key, which Prometheus sends with `authorization: credentials`).

/healthz answers from the process alone: no dependency is touched, so a flood of liveness probes costs
nothing and a DynamoDB or model outage never gets a healthy process restarted. /readyz probes DynamoDB,
Chroma and the model, and answers from its last probes for FRAUDAGENT_READINESS_CACHE_S (concurrent
calls share one round of probes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from fraudagent import __version__
from fraudagent.api import problems
from fraudagent.api.deps import Caller, require_role
from fraudagent.core.settings import Settings
from fraudagent.store import dynamo

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    components: dict[str, str]


def _check(probe: Callable[[], Any]) -> str:
    try:
        probe()
        return "ok"
    except Exception as error:  # a probe reports, it never raises
        return f"unavailable ({type(error).__name__})"


def _llm_probe(settings: Settings) -> Callable[[], Any]:
    auth = {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"}
    return lambda: httpx.get(
        f"{settings.llm_base_url}/models", headers=auth, timeout=settings.readiness_timeout_s
    ).raise_for_status()


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process serves requests. No key needed; no dependency is probed (that is /readyz)."""
    return Health(status="ok", version=__version__)


class _ReadinessCache:
    """The last round of probes and when it ran; one round at a time."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.at = float("-inf")
        self.components: dict[str, str] = {}


async def _probe_all(request: Request) -> dict[str, str]:
    investigator = request.app.state.investigator
    settings: Settings = request.app.state.settings
    cases_table = dynamo.table_name(settings, dynamo.CASES)

    def chroma() -> None:
        if investigator.past_cases is None:
            raise RuntimeError("no past-case store configured")
        investigator.past_cases.count()

    probes: dict[str, Callable[[], Any]] = {
        "dynamodb": lambda: investigator.history.client.describe_table(TableName=cases_table),
        "chroma": chroma,
        "llm": _llm_probe(settings),
    }

    async def run(probe: Callable[[], Any]) -> str:
        try:
            return await asyncio.wait_for(asyncio.to_thread(_check, probe), timeout=settings.readiness_timeout_s + 1)
        except TimeoutError:
            return "unavailable (timeout)"

    results = await asyncio.gather(*(run(p) for p in probes.values()))
    return dict(zip(probes, results, strict=True))


@router.get("/readyz", response_model=Readiness, responses=problems.responses(503))
async def readyz(request: Request) -> Any:
    """Ready to serve: DynamoDB (the cases table), the past-case store (Chroma) and the LLM all answer.
    503 problem+json naming what does not. Probed at most once per FRAUDAGENT_READINESS_CACHE_S."""
    settings: Settings = request.app.state.settings
    cache: _ReadinessCache | None = getattr(request.app.state, "readiness", None)
    if cache is None:
        cache = request.app.state.readiness = _ReadinessCache()
    async with cache.lock:
        if time.monotonic() - cache.at >= settings.readiness_cache_s:
            cache.components = await _probe_all(request)
            cache.at = time.monotonic()
        components = dict(cache.components)
    if all(v == "ok" for v in components.values()):
        return Readiness(status="ready", components=components)
    down = ", ".join(k for k, v in components.items() if v != "ok")
    response: JSONResponse = problems.problem(
        503, "Not ready", f"unavailable: {down}", type_="/problems/not-ready", components=components
    )
    response.headers["Retry-After"] = "5"
    return response


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        },
        **problems.responses(401, 403, 429),
    },
)
def metrics(request: Request, _: Annotated[Caller, Depends(require_role("admin"))]) -> Response:
    """Prometheus metrics: request latency by route, reports by path, tokens, job queue depth, the model scheduler."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
