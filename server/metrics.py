"""Prometheus metrics, on a registry owned by the application (not the global one), so
several apps in one test process never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "xiaowu_http_requests_total", "HTTP requests by route and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.http_seconds = Histogram(
            "xiaowu_http_request_seconds", "HTTP request duration", ["route"],
            registry=self.registry,
        )
        self.logins = Counter(
            "xiaowu_logins_total", "Clerk login attempts by outcome", ["outcome"],
            registry=self.registry,
        )
        self.socket_connections = Gauge(
            "xiaowu_socket_connections", "Open socket.io connections by namespace",
            ["namespace"], registry=self.registry,
        )
        self.socket_refused = Counter(
            "xiaowu_socket_refused_total", "Refused socket.io connections by code",
            ["namespace", "code"], registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
