"""The FastAPI application: routers, auth, limits, metrics, request ids and (when configured) tracing;
the summary workers and the eval-run pool start and stop with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from fraudagent import __version__
from fraudagent.agent.pipeline import Investigator
from fraudagent.api import cases, decisions, docs, feedback, keys, problems
from fraudagent.api import chat as chat_views
from fraudagent.api import evalruns as eval_views
from fraudagent.api import summaries as summary_views
from fraudagent.api.console import views as console
from fraudagent.api.ops import views as ops
from fraudagent.api.ops.metrics import Metrics
from fraudagent.api.ops.middleware import RequestMiddleware
from fraudagent.api.ops.tracing import setup_tracing
from fraudagent.core.settings import Settings
from fraudagent.evalruns.flows import EvalRunner
from fraudagent.keys.ratelimit import KeyRateLimiter
from fraudagent.keys.service import KeyAuthenticator
from fraudagent.summaries import flows as summary_flows


def create_app(settings: Settings, investigator: Investigator, *, span_exporter: Any | None = None) -> FastAPI:
    tables = investigator.history
    eval_runner = EvalRunner(settings=settings, investigator=investigator, tables=tables)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with summary_flows.running_workers(app, settings=settings, investigator=investigator, tables=tables):
            await run_in_threadpool(eval_runner.start)
            try:
                yield
            finally:
                eval_runner.stop()

    app = FastAPI(
        title="Fraud investigation agent",
        version=__version__,
        description="Drafts evidence-checked investigation reports for a game store's fraud cases.",
        lifespan=lifespan,
        docs_url=None,  # served by fraudagent.api.docs: from the package, under a CSP
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.investigator = investigator
    app.state.metrics = Metrics()
    app.state.keys = KeyAuthenticator(
        history=investigator.history,
        bootstrap_key=settings.api_key,
        cache_s=settings.api_key_cache_s,
        lookup_limiter=KeyRateLimiter(per_minute=settings.api_key_lookup_limit_per_minute),
        on_lookup=app.state.metrics.key_lookups.inc,
    )
    app.state.rate_limiter = KeyRateLimiter(per_minute=settings.api_rate_limit_per_minute)
    app.state.eval_runner = eval_runner
    app.state.queue_depth = summary_flows.queue_depth_reader(tables)  # summary jobs queued or running
    app.state.metrics.watch_queue("summaries", app.state.queue_depth)
    if investigator.scheduler is not None:
        app.state.metrics.watch_scheduler(investigator.scheduler.stats)
    problems.install(app)
    app.include_router(ops.router)
    app.include_router(cases.router)
    app.include_router(decisions.router)
    app.include_router(feedback.router)
    app.include_router(keys.router)
    app.include_router(keys.me_router)
    app.include_router(summary_views.router)
    app.include_router(chat_views.router)
    app.include_router(eval_views.router)
    console.mount(app)
    if settings.api_docs:
        docs.mount(app)
    app.add_middleware(RequestMiddleware, metrics=app.state.metrics, max_body_bytes=settings.api_max_body_bytes)
    setup_tracing(app, settings, exporter=span_exporter)
    return app


def app_from_env() -> FastAPI:
    """The app on the settings from the environment, for `uvicorn --factory fraudagent.api.app:app_from_env`.

    Unlike `fraudagent serve` it makes no API key for the run: set FRAUDAGENT_API_KEY (or use stored keys).
    """
    from fraudagent.bootstrap import build_investigator
    from fraudagent.core.settings import get_settings

    settings = get_settings()
    return create_app(settings, build_investigator(settings))
