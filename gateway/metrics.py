"""Prometheus metrics (prometheus-client), one registry per app.

Requests by route and status, latency and time-to-first-token histograms,
output tokens, in-flight streams, backend errors by gRPC code, idempotent replays.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from runinfra.chat.v1 import chat_service_pb2 as pb

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds; LLM latencies span milliseconds (first token) to minutes (long replies).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to the end of the response",
            ["route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request to the backend's first chunk",
            ["route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.output_tokens = Counter(
            "gateway_output_tokens", "Output tokens reported by the backend", ["route"], registry=r
        )
        self.streams = Gauge(
            "gateway_streams_in_flight",
            "Open streaming responses",
            registry=r,
            multiprocess_mode="livesum",  # with --workers: the sum over live processes
        )
        self.hold = Gauge(
            "gateway_coalescing_hold_ms",
            "ChatRequest.max_hold_ms given to new backend calls (0: not under load)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.backend_errors = Counter(
            "gateway_backend_errors",
            "Backend calls that failed, by gRPC code",
            ["code"],
            registry=r,
        )
        self.replays = Counter(
            "gateway_idempotent_replays", "Responses replayed for an Idempotency-Key", registry=r
        )

        self._requests: dict[tuple[str, str], Any] = {}
        self._routes: dict[str, tuple[Any, Any, Any]] = {}

    def request_done(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request; the labelled children are looked up once per label."""
        key = (route, str(status))
        counter = self._requests.get(key) or self._requests.setdefault(
            key, self.requests.labels(*key)
        )
        counter.inc()
        self.route(route)[2].observe(seconds)

    def route(self, route: str) -> tuple[Any, Any, Any]:
        """(time-to-first-token, output tokens, latency) children for `route`."""
        children = self._routes.get(route)
        if children is None:
            children = (
                self.ttft.labels(route),
                self.output_tokens.labels(route),
                self.latency.labels(route),
            )
            self._routes[route] = children
        return children

    def exposition(self) -> bytes:
        """This process's metrics; with PROMETHEUS_MULTIPROC_DIR set (as `--workers` sets it),
        every worker's, summed, so a scrape answered by any worker sees the whole server."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class CallMetrics:
    """Records one backend call (gateway.backend.CallObserver): time to first token,
    output tokens and the gRPC code of a call that failed."""

    __slots__ = ("_metrics", "_route", "_started")

    def __init__(self, metrics: Metrics, route: str, started: float) -> None:
        self._metrics, self._route, self._started = metrics, route, started

    def first_chunk(self) -> None:
        self._metrics.route(self._route)[0].observe(time.monotonic() - self._started)

    def usage(self, usage: pb.Usage) -> None:
        self._metrics.route(self._route)[1].inc(usage.output_tokens)

    def failed(self, grpc_code: str) -> None:
        self._metrics.backend_errors.labels(grpc_code).inc()
