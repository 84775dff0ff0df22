"""passage archive: passage_vectors

Every sentence (and short whole text) the match stage encodes, with its float16 vector per model
revision, its document and offsets (the text is read from documents.text), for backfill, semantic
search and discovery (issue 13). Empty after the upgrade: documents matched before it have no
archived vectors (`claimwatch match --rematch` archives them).

Revision ID: 0008
Revises: 0007 (chained after the doctor (0006) and reviews (0007) migrations when merged)
Create Date: 2026-12-04 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "passage_vectors",
        sa.Column("id", sa.Integer(), nullable=False, comment="Surrogate key (also the vector index key)."),
        sa.Column("document_id", sa.Integer(), nullable=False, comment="Document the passage is part of."),
        sa.Column(
            "model_key", sa.String(length=400), nullable=False, comment="Model name@revision that encoded it."
        ),
        sa.Column(
            "passage_start", sa.Integer(), nullable=False, comment="Character offset in documents.text."
        ),
        sa.Column(
            "passage_end", sa.Integer(), nullable=False, comment="Character offset just after the passage."
        ),
        sa.Column(
            "whole",
            sa.Boolean(),
            nullable=False,
            comment="The whole (short) text encoded as one passage, not a sentence.",
        ),
        sa.Column("language", sa.String(length=12), nullable=True, comment="Language of the document."),
        sa.Column(
            "vector",
            sa.LargeBinary(),
            nullable=False,
            comment="float16 vector (L2-normalised), little-endian bytes.",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_passage_vectors_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passage_vectors")),
        comment="Encoded passages of matched documents per model revision (the passage archive).",
    )
    op.create_index(
        "ix_passage_vectors_document_model", "passage_vectors", ["document_id", "model_key"], unique=False
    )
    op.create_index("ix_passage_vectors_model_id", "passage_vectors", ["model_key", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_passage_vectors_model_id", table_name="passage_vectors")
    op.drop_index("ix_passage_vectors_document_model", table_name="passage_vectors")
    op.drop_table("passage_vectors")
