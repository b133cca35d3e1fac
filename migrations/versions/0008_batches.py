"""batches: work released to raters in batches, in a seeded order

* assignments.batch: the number of the release (1, 2, ...) that opened the assignment to its
  rater; NULL while it is held (or for work that was never held).
* assignments.queue_order: the place of the assignment in its rater's queue (seeded shuffle
  or session order, set when it is released); NULL sorts after every numbered one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 16:10:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN on both engines: SQLite's batch mode would copy the table and reflect
    # its neighbours (users has an expression index that reflection warns about).
    op.add_column("assignments", sa.Column("batch", sa.Integer(), nullable=True))
    op.add_column("assignments", sa.Column("queue_order", sa.Integer(), nullable=True))


def downgrade():
    # DROP COLUMN: PostgreSQL, and SQLite from 3.35 (these columns carry no index or key).
    op.drop_column("assignments", "queue_order")
    op.drop_column("assignments", "batch")
