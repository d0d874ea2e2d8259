"""Persistence: the relational database (SQLAlchemy Core, async) and the blob store."""
