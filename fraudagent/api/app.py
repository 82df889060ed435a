"""The FastAPI application: routers, auth, limits, metrics, request ids and (when configured) tracing."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from fraudagent import __version__
from fraudagent.agent.pipeline import Investigator
from fraudagent.api import cases, problems
from fraudagent.api.decisions import views as decisions
from fraudagent.api.keys import views as keys
from fraudagent.api.keys.service import KeyAuthenticator
from fraudagent.api.ops import views as ops
from fraudagent.api.ops.metrics import Metrics
from fraudagent.api.ops.middleware import RequestMiddleware
from fraudagent.api.ops.ratelimit import KeyRateLimiter
from fraudagent.api.ops.tracing import setup_tracing
from fraudagent.core.settings import Settings


def create_app(settings: Settings, investigator: Investigator, *, span_exporter: Any | None = None) -> FastAPI:
    app = FastAPI(
        title="Fraud investigation agent",
        version=__version__,
        description="Drafts evidence-checked investigation reports for a game store's fraud cases.",
    )
    app.state.settings = settings
    app.state.investigator = investigator
    app.state.metrics = Metrics()
    app.state.keys = KeyAuthenticator(
        history=investigator.history, bootstrap_key=settings.api_key, cache_s=settings.api_key_cache_s
    )
    app.state.rate_limiter = KeyRateLimiter(per_minute=settings.api_rate_limit_per_minute)
    problems.install(app)
    app.include_router(ops.router)
    app.include_router(cases.router)
    app.include_router(decisions.router)
    app.include_router(keys.router)
    app.add_middleware(RequestMiddleware, metrics=app.state.metrics, max_body_bytes=settings.api_max_body_bytes)
    setup_tracing(app, settings, exporter=span_exporter)
    return app
