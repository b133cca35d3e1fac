"""autosave batches: the highest batch number applied per rating and browser tab

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "autosave_batches",
        sa.Column("rating_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_autosave_batches_seq_positive")),
        sa.ForeignKeyConstraint(
            ["rating_id"],
            ["ratings.id"],
            name=op.f("fk_autosave_batches_rating_id_ratings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rating_id", "client", name=op.f("pk_autosave_batches")),
    )


def downgrade():
    op.drop_table("autosave_batches")
