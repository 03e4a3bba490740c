"""API tokens for scripts, sessions tied to the password they were opened with, and the index the
per-user usage and budget queries read (runs of one user over a span of time).

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(24), primary_key=True),  # public: what a user names to revoke it
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # SHA-256 of the token, hex
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("stamp", sa.String(32), nullable=False, server_default=""),  # the password it was made under
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used", sa.Float),
    )
    op.create_index("api_tokens_user", "api_tokens", ["user"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("stamp", sa.String(32), nullable=False, server_default=""))
    op.create_index("runs_user_created", "runs", ["user", "created_at"])


def downgrade() -> None:
    op.drop_index("runs_user_created", "runs")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("stamp")
    op.drop_table("api_tokens")
