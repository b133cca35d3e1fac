"""any observer scale: an item's answer is a number, a text value or "not applicable"

* item_scores and consensus_scores: the fixed check ``score >= 0 AND score <= 4`` goes (the
  range is the instrument file's, checked by the application); ``score`` may be NULL;
  ``value_text`` holds the answer of nominal items (category codes) and text items;
  ``not_applicable`` marks an item answered "not applicable". A check keeps exactly one of
  the three set. Every existing rating keeps its scores (they are numbers, so the check holds).

SQLite alters the tables in batch mode (copy, drop, rename); PostgreSQL alters them in place.

Revision ID: 0005
Revises: 0003 (the lead re-chains it onto 0004)
Create Date: 2026-11-30 15:00:00

"""

import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("item_scores", "consensus_scores")
ONE_ANSWER = (
    "(CASE WHEN score IS NOT NULL THEN 1 ELSE 0 END) + "
    "(CASE WHEN value_text IS NOT NULL THEN 1 ELSE 0 END) + "
    "(CASE WHEN not_applicable THEN 1 ELSE 0 END) = 1"
)


@contextmanager
def batch(table: str):
    """``op.batch_alter_table``. On SQLite it reflects the table and the tables its keys refer
    to; SQLAlchemy cannot reflect the expression index on lower(username) of ``users`` and
    warns, though batch mode leaves ``users`` untouched."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index", sa.exc.SAWarning
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            yield batch_op


def upgrade():
    for table in TABLES:
        with batch(table) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_score_range"), type_="check")
            batch_op.alter_column("score", existing_type=sa.Integer(), nullable=True)
            batch_op.add_column(sa.Column("value_text", sa.Text(), nullable=True))
            batch_op.add_column(
                sa.Column(
                    "not_applicable", sa.Boolean(), server_default=sa.false(), nullable=False
                )
            )
            batch_op.create_check_constraint(op.f(f"ck_{table}_one_answer"), ONE_ANSWER)


def downgrade():
    """Back to 0-4 numbers only: refused while any answer is not such a number."""
    bind = op.get_bind()
    for table in TABLES:
        found = bind.execute(
            sa.text(
                f"SELECT count(*) FROM {table} WHERE score IS NULL OR score < 0 OR score > 4"
            )
        ).scalar()
        if found:
            raise RuntimeError(
                f"{table} holds {found} answers that are not scores 0-4 (other ranges, "
                "categories, text or 'not applicable'); the schema before 0005 cannot hold "
                "them. Nothing was changed."
            )
    for table in TABLES:
        with batch(table) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_one_answer"), type_="check")
            batch_op.drop_column("not_applicable")
            batch_op.drop_column("value_text")
            batch_op.alter_column("score", existing_type=sa.Integer(), nullable=False)
            batch_op.create_check_constraint(
                op.f(f"ck_{table}_score_range"), "score >= 0 AND score <= 4"
            )
