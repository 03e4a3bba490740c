"""Evaluations keep what a baseline and the Evaluate tab read back: a name to pin a baseline by, how
many times each case ran, and per cell each run's verdict, assertion results and measures.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("name", sa.String(100)))
        batch.add_column(sa.Column("repeats", sa.Integer, nullable=False, server_default="1"))
    op.create_index("evaluations_template_name", "evaluations", ["template", "name"])
    with op.batch_alter_table("evaluation_cells") as batch:
        batch.add_column(sa.Column("runs", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("evaluation_cells") as batch:
        batch.drop_column("runs")
    op.drop_index("evaluations_template_name", "evaluations")
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("repeats")
        batch.drop_column("name")
