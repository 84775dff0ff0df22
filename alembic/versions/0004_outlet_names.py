"""outlet names: documents.outlet holds the publication's stated name, else the host

Existing rows keep their host names; documents stored from now on carry the site name.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "Outlet: host name of the final URL."
NEW = "Outlet: the publication's name from the page metadata, else the host of the final URL."


def set_comment(comment: str, existing: str) -> None:
    # SQLite stores no column comments (and would rebuild the table under its views to change one)
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "documents", "outlet", existing_type=sa.String(255), comment=comment, existing_comment=existing
        )


def upgrade() -> None:
    set_comment(NEW, OLD)


def downgrade() -> None:
    set_comment(OLD, NEW)
