"""`make migrations-check`: `alembic upgrade head` then `alembic check` (the models and the migrations
agree) on a fresh SQLite file and, with --postgres, on a scratch PostgreSQL database created and
dropped for the purpose. The alembic command line reads the URL from CLAIMWATCH_DATABASE_URL, as a
user's would.

    python scripts/check_migrations.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def alembic(database_url: str, *args: str) -> None:
    env = {**os.environ, "CLAIMWATCH_DATABASE_URL": database_url}
    subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, check=True)


def check(database_url: str, label: str) -> None:
    print(f"== {label}: alembic upgrade head + alembic check", flush=True)
    alembic(database_url, "upgrade", "head")
    alembic(database_url, "check")


def check_postgres(admin_url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"claimwatch_migrations_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
            check(url.render_as_string(hide_password=False), f"PostgreSQL ({name})")
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", metavar="URL", help="A PostgreSQL server URL allowed to create databases."
    )
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            check(f"sqlite:///{Path(tmp) / 'migrations.db'}", "SQLite")
        if args.postgres:
            check_postgres(args.postgres)
    except subprocess.CalledProcessError as exc:
        print(f"migrations check failed: {exc}", file=sys.stderr)
        return 1
    print("migrations check: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
