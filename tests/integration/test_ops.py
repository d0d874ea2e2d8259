"""Operations endpoints: liveness, readiness (database + migrations), Prometheus."""

from __future__ import annotations

from pathlib import Path

from server.app import create_app
from tests.conftest import AppClient, make_settings
from tests.integration.helpers import Client


async def test_healthz_and_readyz_answer_when_the_database_is_current(client: Client) -> None:
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"database": "ok", "migrations": "ok"}


async def test_readyz_refuses_traffic_while_migrations_are_pending(
    tmp_path: Path, aiohttp_client: AppClient
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, auto_migrate=False)))
    ready = await client.get("/readyz")
    assert ready.status == 503
    body = await ready.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"].startswith("at None")


async def test_metrics_count_requests_and_logins(client: Client) -> None:
    await client.post("/api/auth/login", json={"username": "x", "password": "y"})
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    assert 'xiaowu_logins_total{outcome="invalid_credentials"} 1.0' in text
    assert 'xiaowu_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert ('xiaowu_http_requests_total{method="POST",route="/api/auth/login",status="401"} 1.0'
            in text)
