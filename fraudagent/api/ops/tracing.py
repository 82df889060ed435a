"""OpenTelemetry tracing, only when FRAUDAGENT_OTLP_ENDPOINT is set: a span per request (FastAPI
instrumentation, health/metrics routes excluded) exported over OTLP/gRPC in batches.

The provider is the app's own (not the global one), so tests and several apps in a process don't mix.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from fraudagent.core.settings import Settings

EXCLUDED_URLS = "healthz,readyz,metrics"


def setup_tracing(app: FastAPI, settings: Settings, *, exporter: Any | None = None) -> Any | None:
    """Instrument the app when an endpoint is configured (or an exporter is given); returns the provider."""
    if settings.otlp_endpoint is None and exporter is None:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint or ""
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    app.state.tracer_provider = provider
    return provider
