"""source_checks (the latest `claimwatch doctor --sources` probe of each source); the fact-checker's
review on claims (ClaimReview: verdict, claimant, review_url, reviewer, reviewed_at, language);
matches.score described as the fused score it is

Re-creates claim_lifecycle (with the review columns) and source_health (with the probe columns).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.views import (
    CLAIM_LIFECYCLE_0005,
    SOURCE_HEALTH_0005,
    VIEWS_CHANGED_0006,
    View,
    create_view_sql,
    drop_view_sql,
)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM_COLUMNS = (
    ("verdict", sa.String(200), "Fact-checker's rating (ClaimReview reviewRating.alternateName)."),
    ("claimant", sa.String(300), "Who made the claim (ClaimReview itemReviewed.author.name)."),
    ("review_url", sa.Text(), "Address of the fact-checker's review."),
    ("reviewer", sa.String(300), "Publisher of the review (ClaimReview author or publisher name)."),
    ("reviewed_at", sa.DateTime(), "When the review was published (ClaimReview datePublished; naive UTC)."),
    ("language", sa.String(35), "Language of the claim text (ClaimReview inLanguage)."),
)


def _quote(text: str) -> str:
    """A constant of this file as the body of an SQL string literal (DDL takes no bound parameters)."""
    return text.replace("'", "''")


def create_views(views: Sequence[View], dialect: str) -> None:
    for view in views:
        op.execute(create_view_sql(view, dialect))
        if dialect == "postgresql":
            op.execute(f"COMMENT ON VIEW {view.name} IS '{_quote(view.description)}'")
            for column in view.columns:
                op.execute(f"COMMENT ON COLUMN {view.name}.{column.name} IS '{_quote(column.description)}'")


SCORE_OLD = "Cosine similarity of passage and claim embeddings."
SCORE_NEW = (
    "Match score: the cosine of passage and claim embeddings, fused with the other parts of "
    "score_components when the matcher combines several."
)


def score_comment(comment: str, existing: str) -> None:
    # SQLite stores no column comments (and would rebuild the table under its views to change one)
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "matches", "score", existing_type=sa.Float(), comment=comment, existing_comment=existing
        )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    score_comment(SCORE_NEW, SCORE_OLD)
    for view in VIEWS_CHANGED_0006:
        op.execute(drop_view_sql(view))
    for name, kind, comment in CLAIM_COLUMNS:
        op.add_column("claims", sa.Column(name, kind, nullable=True, comment=comment))
    op.create_table(
        "source_checks",
        sa.Column("source_id", sa.Integer(), nullable=False, autoincrement=False,
                  comment="sources.id of the probed source."),
        sa.Column("checked_at", sa.DateTime(), nullable=False, comment="When it was probed (naive UTC)."),
        sa.Column("status", sa.String(20), nullable=False,
                  comment="Verdict: ok, moved, stale, empty, not-a-feed, blocked-by-robots or error."),
        sa.Column("http_status", sa.Integer(), nullable=True, comment="HTTP status of the final response."),
        sa.Column("url", sa.Text(), nullable=False,
                  comment="Address probed (the source's address at the time)."),
        sa.Column("final_url", sa.Text(), nullable=True, comment="Address after redirects."),
        sa.Column("moved_to", sa.Text(), nullable=True,
                  comment="New address offered when the source redirects permanently."),
        sa.Column("content_type", sa.String(200), nullable=True, comment="Content-Type of the response."),
        sa.Column("parsed_as", sa.String(40), nullable=True,
                  comment="What the body parsed as: rss20, atom10, urlset, sitemapindex, robots.txt, gdelt."),
        sa.Column("items", sa.Integer(), nullable=True, comment="Items (entries, URLs, articles) listed."),
        sa.Column("newest_item_at", sa.DateTime(), nullable=True,
                  comment="Date of the newest item (naive UTC)."),
        sa.Column("items_recent", sa.Integer(), nullable=True, comment="Items dated in the last 7 days."),
        sa.Column("detail", sa.Text(), nullable=True, comment="What the verdict rests on, in words."),
        sa.Column("fix", sa.Text(), nullable=True, comment="What to do about it (empty when nothing)."),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE",
                                name=op.f("fk_source_checks_source_id_sources")),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_source_checks")),
        comment="The latest probe of each source by `claimwatch doctor --sources`.",
    )  # fmt: skip
    create_views(VIEWS_CHANGED_0006, dialect)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    score_comment(SCORE_OLD, SCORE_NEW)
    for view in VIEWS_CHANGED_0006:
        op.execute(drop_view_sql(view))
    op.drop_table("source_checks")
    for name, _, _ in reversed(CLAIM_COLUMNS):
        op.drop_column("claims", name)
    create_views((CLAIM_LIFECYCLE_0005, SOURCE_HEALTH_0005), dialect)
