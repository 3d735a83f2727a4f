"""The body of every service's Alembic env.py: one code path for all migrations."""

from __future__ import annotations

import zlib

from alembic import context
from sqlalchemy import MetaData, text

from services.common.storage import make_engine


def run_migrations(target_metadata: MetaData) -> None:
    """Run the pending migrations online, serialised across processes on PostgreSQL."""
    cfg = context.config
    url = str(cfg.attributes.get("database_url") or cfg.get_main_option("sqlalchemy.url"))
    version_table = cfg.attributes.get("version_table", "alembic_version")
    engine = make_engine(url)
    with engine.connect() as conn:
        is_postgres = conn.dialect.name == "postgresql"
        if is_postgres:
            conn.execute(
                text("SELECT pg_advisory_lock(:k)"), {"k": zlib.crc32(version_table.encode())}
            )
            conn.commit()
        try:
            context.configure(
                connection=conn,
                target_metadata=target_metadata,
                version_table=version_table,
                render_as_batch=conn.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
        finally:
            if is_postgres:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": zlib.crc32(version_table.encode())}
                )
                conn.commit()
    engine.dispose()
