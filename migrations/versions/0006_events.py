"""coded events: behaviour codes recorded on the audio timeline of a rating

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-30 15:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rating_id", sa.Integer(), nullable=False),
        sa.Column("instrument_version_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("time_s", sa.Double(), nullable=False),
        sa.Column("end_s", sa.Double(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("time_s >= 0", name=op.f("ck_events_time_nonnegative")),
        sa.CheckConstraint(
            "end_s IS NULL OR end_s >= time_s", name=op.f("ck_events_end_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"],
            ["ratings.id"],
            name=op.f("fk_events_rating_id_ratings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instrument_version_id"],
            ["instrument_versions.id"],
            name=op.f("fk_events_instrument_version_id_instrument_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("rating_id", "client_id", name=op.f("uq_events_rating_id_client_id")),
    )


def downgrade():
    op.drop_table("events")
