"""Optional OpenTelemetry tracing: a span per callback, per processed record and per OC
call, with the trace context carried through Kafka in `traceparent` headers.

Off by default, and then free: every method is a no-op. `GATEWAY_TRACING_ENABLED=true`
needs the `otel` extra (`uv sync --extra otel`); spans go to an OTLP/HTTP collector
configured the standard way (`OTEL_EXPORTER_OTLP_ENDPOINT`, ...), or to stdout with
`GATEWAY_TRACING_EXPORTER=console`. The gateway keeps its own tracer provider rather than
replacing the process-wide one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.errors import ConfigurationError
from gateway.log.base import Headers
from gateway.settings import Settings

_TRACE_HEADERS = ("traceparent", "tracestate")


class Tracing:
    """Spans and context propagation, or nothing at all when tracing is off."""

    def __init__(self, settings: Settings, span_processor: Any = None) -> None:
        self.enabled = settings.tracing_enabled
        self._tracer: Any = None
        self._propagator: Any = None
        self._kinds: Any = None
        self._trace: Any = None
        if not self.enabled:
            return
        try:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
            from opentelemetry.trace import SpanKind
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError as exc:
            raise ConfigurationError(
                "GATEWAY_TRACING_ENABLED needs the otel extra: uv sync --extra otel"
            ) from exc
        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.tracing_service_name})
        )
        if span_processor is not None:
            provider.add_span_processor(span_processor)
        elif settings.tracing_exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._provider = provider
        self._tracer = provider.get_tracer("oc-event-gateway")
        self._propagator = TraceContextTextMapPropagator()
        self._kinds = SpanKind
        self._trace = trace

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        parent: Iterable[tuple[str, bytes]] | dict[str, str] | None = None,
        attributes: dict[str, str] | None = None,
        kind: str = "internal",
        links: Iterable[Iterable[tuple[str, bytes]]] = (),
    ) -> Iterator[None]:
        """Run the block inside a span; `parent` carries a trace context to continue
        (HTTP headers, or a Kafka record's headers); `links` the contexts of other
        records the span works for (a batch's look-ups serve many records)."""
        if not self.enabled:
            yield
            return
        trace = self._trace
        context = self._extract(parent) if parent is not None else None
        linked = [
            trace.Link(trace.get_current_span(self._extract(headers)).get_span_context())
            for headers in links
        ]
        with self._tracer.start_as_current_span(
            name,
            context=context,
            attributes=attributes,
            kind=self._kinds[kind.upper()],
            links=linked,
        ):
            yield

    def _extract(self, carrier: Iterable[tuple[str, bytes]] | dict[str, str]) -> Any:
        if not isinstance(carrier, dict):
            carrier = {k: v.decode("latin-1") for k, v in carrier if k in _TRACE_HEADERS}
        return self._propagator.extract(carrier)

    def headers(self) -> Headers:
        """The current span's context as Kafka record headers (empty when off)."""
        if not self.enabled:
            return ()
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return tuple((name, value.encode()) for name, value in carrier.items())

    def shutdown(self) -> None:
        """Flush and stop the exporter (at the end of the lifespan)."""
        if self.enabled:
            self._provider.shutdown()
