"""Make or upgrade the schema; alembic migrations are the only way the schema is made."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config

from ecomflow.engine.config import get_settings

# The migrations ship inside the package (ecomflow.migrations), so an installed wheel migrates too.
MIGRATIONS_DIR = str(files("ecomflow.migrations"))


def alembic_config(url: str | None = None) -> Config:
    """Return the alembic config for a database URL (default: the configured one)."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    config.set_main_option("sqlalchemy.url", url or get_settings().resolved_database_url)
    return config


def upgrade_to_head(url: str | None = None) -> None:
    """Apply every migration not yet applied."""
    command.upgrade(alembic_config(url), "head")
