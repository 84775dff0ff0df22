"""match reviews and stance: match_reviews, claim_thresholds, stance columns, reviewed views

Adds match_reviews (every verdict on a match: restates, rebuts, reports or wrong, with reviewer, time,
note; history kept), claim_thresholds (per-claim thresholds fitted on reviews), the matches columns
predicted_stance, stance_confidence (pipelines/stance.py; filled here for the stored matches), verdict
and review_id (the latest review, kept by triggers), and per-stance counts in the aggregate tables.
The aggregates are rebuilt with matches reviewed wrong left out, the triggers of db/aggregates.py
re-created in their reviewing form, and the research views re-created (db/views.py VIEWS, with the new
claim_review_stats).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.aggregates import create_triggers, drop_triggers, rebuild_aggregates
from db.views import VIEWS, VIEWS_0006, create_view_sql, drop_view_sql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STANCES = ("restates", "rebuts", "reports")
STANCE_DOCUMENTS = {
    "restating": "Of those documents: with a passage restating the claim.",
    "rebutting": "Of those documents: with a passage rebutting it.",
    "reporting": "Of those documents: with a passage reporting it.",
}
STANCE_PASSAGES = {
    "restates": "Of those passages: restating the claim (verdict, else predicted).",
    "rebuts": "Of those passages: rebutting it (verdict, else predicted).",
    "reports": "Of those passages: reporting it (verdict, else predicted).",
}
ROLLUP_TABLES = ("claim_day_stats", "claim_week_stats", "claim_source_stats")
COVERING = {
    "ix_claim_documents_day": [
        "claim_id", "day", "source_id", "outlet", "language", "matches", "best_score", "seen_at",
    ],
    "ix_claim_documents_week": [
        "claim_id", "week_start", "source_id", "outlet", "language", "matches", "best_score",
    ],
    "ix_claim_documents_source": ["claim_id", "source_id", "outlet", "matches", "best_score", "seen_at"],
}  # fmt: skip
MATCH_COLUMNS = {
    "predicted_stance": (
        sa.String(10),
        "Automatic stance of the passage toward the claim (pipelines/stance.py): restates, rebuts or "
        "reports. A prediction, never a review.",
    ),
    "stance_confidence": (sa.Float(), "Confidence of predicted_stance (0-1)."),
    "verdict": (
        sa.String(10),
        "Latest reviewed verdict (restates, rebuts, reports or wrong); empty: not reviewed. Kept equal to "
        "the latest match_reviews row by triggers.",
    ),
    "review_id": (sa.Integer(), "match_reviews.id of that latest review (kept by triggers)."),
}


def create_views(views: Sequence, dialect: str) -> None:  # type: ignore[type-arg]
    for view in views:
        op.execute(create_view_sql(view, dialect))
        if dialect == "postgresql":
            op.execute(f"COMMENT ON VIEW {view.name} IS '{_quote(view.description)}'")
            for column in view.columns:
                op.execute(f"COMMENT ON COLUMN {view.name}.{column.name} IS '{_quote(column.description)}'")


def _recreate_covering(with_stances: bool) -> None:
    for name, columns in COVERING.items():
        op.drop_index(name, table_name="claim_documents")
        op.create_index(name, "claim_documents", columns + (list(STANCES) if with_stances else []))


def backfill_stances(bind: sa.engine.Connection) -> int:
    """Predicted stance of every stored match (pipelines/stance.py), in batches."""
    from pipelines.stance import predict_stance

    rows = bind.execute(
        sa.text(
            "SELECT m.id, m.passage, m.score, m.threshold, c.text, d.language FROM matches m "
            "JOIN claims c ON c.id = m.claim_id JOIN documents d ON d.id = m.document_id ORDER BY m.id"
        )
    ).all()
    update = sa.text(
        "UPDATE matches SET predicted_stance = :stance, stance_confidence = :confidence WHERE id = :id"
    )
    batch = []
    for ident, passage, score, threshold, claim, language in rows:
        stance = predict_stance(passage, claim, language, score, threshold)
        batch.append({"id": ident, "stance": stance.stance, "confidence": stance.confidence})
        if len(batch) >= 5000:
            bind.execute(update, batch)
            batch = []
    if batch:
        bind.execute(update, batch)
    return len(rows)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for view in reversed(VIEWS_0006):
        op.execute(drop_view_sql(view))
    drop_triggers(bind, reviews=False)
    with op.batch_alter_table("matches") as batch:
        for name, (type_, comment) in MATCH_COLUMNS.items():
            batch.add_column(sa.Column(name, type_, nullable=True, comment=comment))
    op.create_index("ix_matches_verdict_claim", "matches", ["verdict", "claim_id"])
    op.create_table(
        "match_reviews",
        sa.Column("id", sa.Integer(), nullable=False, comment="Surrogate key."),
        sa.Column("match_id", sa.Integer(), nullable=False, comment="The reviewed match."),
        sa.Column("verdict", sa.String(10), nullable=False,
                  comment="restates (asserts the claim), rebuts (denies or argues against it), reports "
                  "(attributes it without endorsing it) or wrong (not about this claim)."),
        sa.Column("reviewer", sa.String(120), nullable=False,
                  comment="Who reviewed (login name or --reviewer)."),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False, comment="When (naive UTC)."),
        sa.Column("note", sa.Text(), nullable=True, comment="Optional note of the reviewer."),
        sa.Column("via", sa.String(20), nullable=False,
                  comment="How the verdict came in: terminal, import or set."),
        sa.ForeignKeyConstraint(["match_id"], ["matches.id"], name=op.f("fk_match_reviews_match_id_matches"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_reviews")),
        comment="Reviewed verdicts on matches, with reviewer, time and note; history kept, the latest counts "
        "(copied to matches.verdict by triggers).",
    )  # fmt: skip
    op.create_index("ix_match_reviews_match_latest", "match_reviews", ["match_id", "reviewed_at", "id"])
    op.create_table(
        "claim_thresholds",
        sa.Column("claim_id", sa.Integer(), nullable=False, comment="claims.id"),
        sa.Column("threshold", sa.Float(), nullable=False,
                  comment="Score at or above which a match is kept."),
        sa.Column("reviews", sa.Integer(), nullable=False, comment="Reviewed matches it was fitted on."),
        sa.Column("precision", sa.Float(), nullable=True,
                  comment="Precision among those reviews at the threshold."),
        sa.Column("fitted_at", sa.DateTime(), nullable=False, comment="When it was fitted (naive UTC)."),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"], name=op.f("fk_claim_thresholds_claim_id_claims"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("claim_id", name=op.f("pk_claim_thresholds")),
        comment="Per-claim match thresholds fitted on reviewed verdicts.",
    )  # fmt: skip
    with op.batch_alter_table("claim_documents") as batch:
        for name, comment in STANCE_PASSAGES.items():
            batch.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default="0", comment=comment)
            )
    for table in ROLLUP_TABLES:
        with op.batch_alter_table(table) as batch:
            for name, comment in STANCE_DOCUMENTS.items():
                batch.add_column(
                    sa.Column(name, sa.Integer(), nullable=False, server_default="0", comment=comment)
                )
    _recreate_covering(with_stances=True)
    if dialect == "postgresql":
        op.create_table_comment(
            "claim_documents",
            "Per claim and original document with matches: passages, best score, seen day, source, outlet, "
            "language; matches reviewed wrong excluded (maintained by triggers).",
        )
    backfill_stances(bind)
    rebuild_aggregates(bind, reviews=True)  # before the triggers exist: one pass
    create_triggers(bind, reviews=True)
    create_views(VIEWS, dialect)


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for view in reversed(VIEWS):
        op.execute(drop_view_sql(view))
    drop_triggers(bind, reviews=True)
    _recreate_covering(with_stances=False)
    for table in ROLLUP_TABLES:
        with op.batch_alter_table(table) as batch:
            for name in STANCE_DOCUMENTS:
                batch.drop_column(name)
    with op.batch_alter_table("claim_documents") as batch:
        for name in STANCE_PASSAGES:
            batch.drop_column(name)
    if dialect == "postgresql":
        op.create_table_comment(
            "claim_documents",
            "Per claim and original document with matches: passages, best score, seen day, source, outlet, "
            "language (maintained by triggers).",
        )
    op.drop_table("claim_thresholds")
    op.drop_index("ix_match_reviews_match_latest", table_name="match_reviews")
    op.drop_table("match_reviews")
    op.drop_index("ix_matches_verdict_claim", table_name="matches")
    with op.batch_alter_table("matches") as batch:
        for name in reversed(MATCH_COLUMNS):
            batch.drop_column(name)
    rebuild_aggregates(bind, reviews=False)
    create_triggers(bind, reviews=False)
    create_views(VIEWS_0006, dialect)


def _quote(text: str) -> str:
    """A constant of this file as the body of an SQL string literal (DDL takes no bound parameters)."""
    return text.replace("'", "''")
