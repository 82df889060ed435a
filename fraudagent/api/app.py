"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from fraudagent import __version__
from fraudagent.agent.pipeline import Investigator
from fraudagent.api import cases, problems
from fraudagent.api.chat import views as chat_views
from fraudagent.api.chat.service import ChatStore
from fraudagent.api.summaries import flows as summary_flows
from fraudagent.api.summaries import views as summary_views
from fraudagent.api.summaries.service import JobStore
from fraudagent.core.settings import Settings


class Health(BaseModel):
    status: str
    version: str
    components: dict[str, str]


def create_app(settings: Settings, investigator: Investigator) -> FastAPI:
    jobs = JobStore.connect(settings, client=investigator.history.client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with summary_flows.running_workers(app, settings=settings, investigator=investigator, jobs=jobs):
            yield

    app = FastAPI(
        title="Fraud investigation agent",
        version=__version__,
        description="Drafts evidence-checked investigation reports for a game store's fraud cases.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.investigator = investigator
    app.state.jobs = jobs
    app.state.chats = ChatStore.connect(settings, client=investigator.history.client)
    app.state.queue_depth = summary_flows.queue_depth_reader(jobs)  # summary jobs queued or running, for /metrics
    problems.install(app)
    app.include_router(cases.router)
    app.include_router(summary_views.router)
    app.include_router(chat_views.router)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """Liveness plus a quick look at each dependency; no key needed, nothing sensitive."""
        components = {"dynamodb": _check(lambda: investigator.history.client.list_tables(Limit=1))}
        auth = {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"}
        components["llm"] = _check(
            lambda: httpx.get(f"{settings.llm_base_url}/models", headers=auth, timeout=2.0).raise_for_status()
        )
        return Health(status="ok" if all(v == "ok" for v in components.values()) else "degraded", version=__version__, components=components)

    return app


def _check(probe: Any) -> str:
    try:
        probe()
        return "ok"
    except Exception as error:  # a health probe reports, it never raises
        return f"unavailable ({type(error).__name__})"

