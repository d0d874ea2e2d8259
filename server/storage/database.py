"""The database engine: SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL.

Migrations run through Alembic on a connection of this engine, so there is one driver
per database and no separate synchronous configuration to keep in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged commit survives power loss, not just a process crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """Owns the engine; the application keeps exactly one per process."""

    def __init__(self, url: str, *, schema: str | None = None, echo: bool = False) -> None:
        self.url = url
        self.schema = schema
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            # A server can drop idle connections (restart, failover): test each on checkout.
            # A SQLite file cannot, and the test would cost a round trip per transaction.
            kwargs["pool_pre_ping"] = True
            if schema is not None:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def begin(self) -> Any:
        """A transaction: ``async with db.begin() as conn``; commits on success."""
        return self.engine.begin()

    def connect(self) -> Any:
        return self.engine.connect()

    async def upgrade(self, revision: str = "head") -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(_run_upgrade, revision)

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    async def is_current(self) -> bool:
        return await self.current_revision() == head_revision()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


def _run_upgrade(connection: Connection, revision: str) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upsert_insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing``/``_do_update``
    (SQLite and PostgreSQL spell both the same)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


async def insert_ignore(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> None:
    """INSERT that does nothing when the primary key exists, on SQLite and PostgreSQL."""
    await conn.execute(upsert_insert(conn, table).values(**values).on_conflict_do_nothing())
