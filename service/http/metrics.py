"""Prometheus metrics of one app, in the app's own registry (never the global one).

Requests are counted by route template (not raw path, which would explode the label set),
method and status; search stages by their `timings` name; model tokens by model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The app's collectors and what the routes report into them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ragsearch_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ragsearch_http_request_duration_seconds",
            "HTTP request latency by route template and method (to the end of the body).",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "ragsearch_search_stage_duration_seconds",
            "Query pipeline stage latency (dense, lexical, fuse, rerank, pack, generate, ...).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "ragsearch_model_tokens",
            "Model tokens consumed, by model and kind (prompt, completion).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.cost = Counter(
            "ragsearch_model_cost_cny",
            "Estimated model cost in CNY, by model and kind (prompt = input tokens, "
            "completion = output tokens, priced separately).",
            ["model", "kind"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_timings(self, timings_ms: Mapping[str, float], *, total: str) -> None:
        """Stage timings as the pipeline reports them, in milliseconds.

        `total` names the whole operation (`search` or `answer`); an answer's nested
        `search.<stage>` timings count as the search stages they are.
        """
        for key, ms in timings_ms.items():
            if key == "total":
                stage = total
            elif key == "search.total":
                stage = "search"
            else:
                stage = key.removeprefix("search.")
            self.stages.labels(stage).observe(ms / 1000)

    def observe_usage(self, usage: Iterable[Mapping[str, Any]]) -> None:
        """Usage dicts as the pipeline reports them (`model`, `prompt_tokens`,
        `prompt_cost_cny`, ...): tokens and cost by model and direction."""
        for u in usage:
            for kind in ("prompt", "completion"):
                count = int(u.get(f"{kind}_tokens") or 0)
                if count:
                    self.tokens.labels(str(u.get("model")), kind).inc(count)
                cost = float(u.get(f"{kind}_cost_cny") or 0.0)
                if cost > 0:
                    self.cost.labels(str(u.get("model")), kind).inc(cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request once its response is sent (or fails)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(route, scope["method"], status, elapsed)
