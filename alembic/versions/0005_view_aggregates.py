"""aggregate tables behind the research views, kept by triggers; matches.score_components

Adds claim_documents (per claim and original document) and its rollups claim_day_stats,
claim_week_stats, claim_source_stats and claim_facets, fills them from the existing matches, creates
the triggers of db/aggregates.py that keep them exact, and re-creates the research views over them.
Adds ix_matches_claim_score (match_details of one claim, best first), ix_documents_failures
(source_health's failure reasons from the index) and the nullable JSON column
matches.score_components (named parts of a hybrid matcher's score; not filled here).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.aggregates import create_triggers, drop_triggers, rebuild_aggregates
from db.views import VIEWS_0005 as VIEWS  # as this migration created them
from db.views import create_view_sql, drop_view_sql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCORE_COMPONENTS = (
    "Named parts of the score (JSON object of floats, e.g. cosine and lexical) when the matcher combines "
    "several; empty for plain cosine matches."
)
SEEN_DAY = "Day the document was seen (published, else fetched; UTC)."
TRIGGERS = "(maintained by triggers)"


def _claim() -> sa.Column:
    return sa.Column("claim_id", sa.Integer(), nullable=False, autoincrement=False, comment="claims.id")


def _counts(*names: str) -> list[sa.Column]:
    meaning = {
        "documents": "Original documents that matched the claim.",
        "matches": "Matching passages in those documents.",
        "sources": "Distinct sources of those documents.",
        "outlets": "Distinct outlets of those documents.",
        "languages": "Distinct languages of those documents.",
    }
    return [sa.Column(name, sa.Integer(), nullable=False, comment=meaning[name]) for name in names]


def _scores(seen: bool = True) -> list[sa.Column]:
    columns = [sa.Column("best_score", sa.Float(), nullable=False, comment="Highest score.")]
    if seen:
        columns += [
            sa.Column("first_seen", sa.DateTime(), nullable=False, comment="Earliest seen time (naive UTC)."),
            sa.Column("last_seen", sa.DateTime(), nullable=False, comment="Latest seen time (naive UTC)."),
        ]
    return columns


def create_tables() -> None:
    op.create_table(
        "claim_documents",
        _claim(),
        sa.Column("document_id", sa.Integer(), nullable=False, autoincrement=False,
                  comment="documents.id (an original)."),
        sa.Column("matches", sa.Integer(), nullable=False,
                  comment="Matching passages of the claim in the document."),
        sa.Column("best_score", sa.Float(), nullable=False, comment="Highest score of those passages."),
        sa.Column("seen_at", sa.DateTime(), nullable=False,
                  comment="Publication time, else fetch time (naive UTC)."),
        sa.Column("day", sa.Date(), nullable=False, comment=SEEN_DAY),
        sa.Column("week_start", sa.Date(), nullable=False, comment="Monday of the ISO week of day."),
        sa.Column("source_id", sa.Integer(), nullable=False,
                  comment="sources.id of the document; 0: no source."),
        sa.Column("outlet", sa.String(255), nullable=True, comment="Outlet of the document."),
        sa.Column("language", sa.String(12), nullable=True, comment="Language of the document."),
        sa.PrimaryKeyConstraint("claim_id", "document_id", name=op.f("pk_claim_documents")),
        comment="Per claim and original document with matches: passages, best score, seen day, source, "
        f"outlet, language {TRIGGERS}.",
    )  # fmt: skip
    op.create_index(op.f("ix_claim_documents_document_id"), "claim_documents", ["document_id"])
    op.create_index(
        "ix_claim_documents_day",
        "claim_documents",
        ["claim_id", "day", "source_id", "outlet", "language", "matches", "best_score", "seen_at"],
    )
    op.create_index(
        "ix_claim_documents_week",
        "claim_documents",
        ["claim_id", "week_start", "source_id", "outlet", "language", "matches", "best_score"],
    )
    op.create_index(
        "ix_claim_documents_source",
        "claim_documents",
        ["claim_id", "source_id", "outlet", "matches", "best_score", "seen_at"],
    )
    op.create_table(
        "claim_day_stats",
        _claim(),
        sa.Column("day", sa.Date(), nullable=False, comment=SEEN_DAY),
        *_counts("documents", "matches", "sources", "outlets", "languages"),
        *_scores(),
        sa.PrimaryKeyConstraint("claim_id", "day", name=op.f("pk_claim_day_stats")),
        comment=f"Per claim per day: the rollup behind claim_daily {TRIGGERS}.",
    )
    op.create_table(
        "claim_week_stats",
        _claim(),
        sa.Column("week_start", sa.Date(), nullable=False, comment="Monday of the ISO week."),
        *_counts("documents", "matches", "sources", "outlets", "languages"),
        *_scores(seen=False),
        sa.PrimaryKeyConstraint("claim_id", "week_start", name=op.f("pk_claim_week_stats")),
        comment=f"Per claim per ISO week: the rollup behind claim_weekly {TRIGGERS}.",
    )
    op.create_table(
        "claim_source_stats",
        _claim(),
        sa.Column(
            "source_id",
            sa.Integer(),
            nullable=False,
            autoincrement=False,
            comment="sources.id; 0: documents without a source.",
        ),
        *_counts("documents", "matches", "outlets"),
        *_scores(),
        sa.PrimaryKeyConstraint("claim_id", "source_id", name=op.f("pk_claim_source_stats")),
        comment=f"Per claim per source: the rollup behind claim_sources {TRIGGERS}.",
    )
    op.create_table(
        "claim_facets",
        _claim(),
        sa.Column("facet", sa.String(20), nullable=False, comment="outlet or language."),
        sa.Column("value", sa.String(255), nullable=False, comment="The outlet or language."),
        sa.Column("documents", sa.Integer(), nullable=False,
                  comment="Original documents of the claim with it."),
        sa.PrimaryKeyConstraint("claim_id", "facet", "value", name=op.f("pk_claim_facets")),
        comment=f"Documents per claim and outlet or language, for claim_lifecycle {TRIGGERS}.",
    )  # fmt: skip


def create_views(dialect: str, direct: bool) -> None:
    for view in VIEWS:
        op.execute(create_view_sql(view, dialect, direct=direct))
        if dialect == "postgresql":
            op.execute(f"COMMENT ON VIEW {view.name} IS '{_quote(view.description)}'")
            for column in view.columns:
                op.execute(f"COMMENT ON COLUMN {view.name}.{column.name} IS '{_quote(column.description)}'")


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for view in reversed(VIEWS):
        op.execute(drop_view_sql(view))
    components = sa.Column("score_components", sa.JSON(), nullable=True, comment=SCORE_COMPONENTS)
    op.add_column("matches", components)
    op.create_index("ix_matches_claim_score", "matches", ["claim_id", "score"])
    op.create_index("ix_documents_failures", "documents", ["status", "source_id", "reason"])
    create_tables()
    rebuild_aggregates(bind, reviews=False)  # before the triggers exist: one pass, not row by row
    create_triggers(bind, reviews=False)
    create_views(dialect, direct=False)


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for view in reversed(VIEWS):
        op.execute(drop_view_sql(view))
    drop_triggers(bind, reviews=False)
    for table in ("claim_facets", "claim_source_stats", "claim_week_stats", "claim_day_stats"):
        op.drop_table(table)
    for index in ("ix_claim_documents_source", "ix_claim_documents_week", "ix_claim_documents_day"):
        op.drop_index(index, table_name="claim_documents")
    op.drop_index(op.f("ix_claim_documents_document_id"), table_name="claim_documents")
    op.drop_table("claim_documents")
    op.drop_index("ix_matches_claim_score", table_name="matches")
    op.drop_index("ix_documents_failures", table_name="documents")
    op.drop_column("matches", "score_components")
    create_views(dialect, direct=True)


def _quote(text: str) -> str:
    """A constant of this file as the body of an SQL string literal (DDL takes no bound parameters)."""
    return text.replace("'", "''")
