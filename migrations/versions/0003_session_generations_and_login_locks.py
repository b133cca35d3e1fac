"""sessions that end on the server, login attempts counted under a lock, user names unique
whatever their case

* users.session_generation: raised when a user's sessions end (logout, password change,
  deactivation, "log out everywhere"); a session carries the generation it started in.
* login_locks: one row per account name and client address, locked while a login counts the
  recent failures (so that simultaneous attempts are counted one after the other).
* A unique index on lower(username): "Anna" and "anna" cannot both exist. Existing names
  that differ only in case stop the upgrade with a list of them (nothing is changed).
* login_attempts.username in lower case, as the limits now count it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 10:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    _refuse_names_that_differ_only_in_case()
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    op.execute("UPDATE login_attempts SET username = lower(username)")
    op.create_table(
        "login_locks",
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("touched_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "name", name=op.f("pk_login_locks")),
    )


def _refuse_names_that_differ_only_in_case():
    clashes = op.get_bind().execute(
        sa.text(
            "SELECT lower(username) FROM users GROUP BY lower(username) "
            "HAVING count(*) > 1 ORDER BY lower(username)"
        )
    )
    names = [row[0] for row in clashes]
    if names:
        raise RuntimeError(
            "These user names exist more than once when the case of their letters is ignored: "
            f"{', '.join(names)}. Rename all but one of each (for example with "
            "UPDATE users SET username = 'anna2' WHERE username = 'Anna'), then run "
            "`rater init-db` again. Nothing was changed."
        )


def downgrade():
    op.drop_table("login_locks")
    op.drop_index("uq_users_username_lower", table_name="users")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
