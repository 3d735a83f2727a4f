"""Alembic environment of the delivery service (version table alembic_version_delivery)."""

from sqlmodel import SQLModel

from services.common.db import run_migrations
from services.delivery import models  # noqa: F401 - registers the tables

run_migrations(SQLModel.metadata)
