"""Alembic environment: migrations always run on a connection the application hands in.

``server.storage.database.upgrade`` opens an async connection and calls Alembic inside
``run_sync``; there is no second, synchronous driver to configure.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `xiaowu db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
