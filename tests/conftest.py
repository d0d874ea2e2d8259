"""Shared fixtures: databases on SQLite and PostgreSQL, settings, a running app.

PostgreSQL, Redis (and Chromium) are real services. When one is missing the test
fails, in CI always; locally ``XIAOWU_ALLOW_MISSING=1`` turns that into a skip that
names what is missing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.exceptions import RedisError

from server.app import create_app
from server.settings import Settings
from server.storage.database import Database
from signaling.redis_store import RedisStore, connect

POSTGRES_URL = os.environ.get(
    "XIAOWU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("XIAOWU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_TOKEN_SECRET = "test-secret-" + "x" * 40


def missing_service(what: str, error: BaseException) -> None:
    """Fail (CI, default) or skip (explicitly allowed locally) for an absent service."""
    message = f"{what} is not reachable: {type(error).__name__}: {error}"
    if os.environ.get("XIAOWU_ALLOW_MISSING") == "1" and os.environ.get("CI") != "true":
        pytest.skip(message)
    pytest.fail(message + " (set XIAOWU_ALLOW_MISSING=1 to skip outside CI)")


async def _postgres_schema() -> tuple[Database, str]:
    admin = Database(POSTGRES_URL)
    schema = "xw_test_" + secrets.token_hex(6)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        await admin.close()
        missing_service(f"PostgreSQL at {POSTGRES_URL}", exc)
    return admin, schema


async def _drop_schema(admin: Database, schema: str) -> None:
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}")
        await db.upgrade()
        yield db
        await db.close()
        return
    admin, schema = await _postgres_schema()
    db = Database(POSTGRES_URL, schema=schema)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.close()
        await _drop_schema(admin, schema)


@pytest.fixture
async def redis_url() -> str:
    """The test Redis, checked reachable first."""
    client = connect(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, RedisError) as exc:
        missing_service(f"Redis at {REDIS_URL}", exc)
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"xwtest:{secrets.token_hex(6)}:"
    yield prefix
    store = RedisStore(connect(redis_url), prefix)
    await store.clear()
    await store.close()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "citizen_token_secret": TEST_TOKEN_SECRET,
        "port": 8080,
        "capture_warm_start": False,  # tests that capture start the pool themselves
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


AppClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(
    app: web.Application, aiohttp_client: AppClient
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(app)
