"""Alembic environment of the campaigns service (version table alembic_version_campaigns)."""

from sqlmodel import SQLModel

from services.campaigns import models  # noqa: F401 - registers the tables
from services.common.db import run_migrations

run_migrations(SQLModel.metadata)
