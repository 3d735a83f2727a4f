"""Alembic environment of the moderation tables (version table alembic_version_moderation)."""

from sqlmodel import SQLModel

from services.common.db import run_migrations
from services.moderation import membership_models, models  # noqa: F401 - registers the tables

run_migrations(SQLModel.metadata)
