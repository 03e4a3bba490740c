"""Login sessions: one row per logged-in browser, keyed by a hash of its token (never the token).

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 of the token, hex
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),  # the absolute lifetime's end
    )
    op.create_index("sessions_user", "sessions", ["user"])
    op.create_index("sessions_expires", "sessions", ["expires_at"])
    op.create_index("sessions_last_seen", "sessions", ["last_seen"])


def downgrade() -> None:
    op.drop_table("sessions")
