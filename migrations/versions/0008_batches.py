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
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("queue_order", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("queue_order")
        batch_op.drop_column("batch")
