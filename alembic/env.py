"""Alembic environment: the URL comes from claimwatch's settings, the metadata from db.models."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from crawler.config import load_settings
from db.models import Base
from db.session import make_engine
from db.views import view_names

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata

# Tables other libraries create and own in the same database; never compared or migrated.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


# The research views (db/views.py, created by migration 0003) are not models; never compared.
VIEWS = frozenset(view_names())


def include_name(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "table":
        return name not in FOREIGN_TABLES and name not in VIEWS
    return parent_names.get("table_name") not in FOREIGN_TABLES | VIEWS


def database_url() -> str:
    # `claimwatch init` passes the URL explicitly; the alembic CLI reads the one settings source.
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        include_name=include_name,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=include_name,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
