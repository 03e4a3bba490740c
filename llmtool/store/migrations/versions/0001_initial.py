"""The run store: runs and their events, template versions, evaluations, process heartbeats,
shared secrets, and full-text search over prompts and answers.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Search: case-insensitive whole words of letters and digits. SQLite's FTS5 `unicode61` splits on
# everything else; PostgreSQL's `simple` parser would keep `a.b` or `x@y.z` whole, so the text is
# turned into plain words first. Both then find the same runs.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE runs_fts USING fts5(prompt, text, content='runs', content_rowid='seq', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN "
    "INSERT INTO runs_fts(rowid, prompt, text) VALUES (new.seq, new.prompt, new.text); END",
    "CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN "
    "INSERT INTO runs_fts(runs_fts, rowid, prompt, text) VALUES ('delete', old.seq, old.prompt, old.text); END",
    "CREATE TRIGGER runs_fts_update AFTER UPDATE OF prompt, text ON runs BEGIN "
    "INSERT INTO runs_fts(runs_fts, rowid, prompt, text) VALUES ('delete', old.seq, old.prompt, old.text); "
    "INSERT INTO runs_fts(rowid, prompt, text) VALUES (new.seq, new.prompt, new.text); END",
]
POSTGRES_FTS = [
    "ALTER TABLE runs ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', "
    "regexp_replace(prompt || ' ' || text, '[^[:alnum:]]+', ' ', 'g'))) STORED",
    "CREATE INDEX runs_search ON runs USING gin (search)",
]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("user", sa.String(200)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("conversation_id", sa.String(40)),
        sa.Column("position", sa.Integer),
        sa.Column("evaluation_id", sa.String(40)),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("system", sa.Text),
        sa.Column("template", sa.String(200)),
        sa.Column("template_hash", sa.String(64)),
        sa.Column("variables", sa.JSON),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("validation", sa.JSON),
        sa.Column("error_kind", sa.String(40)),
        sa.Column("error_message", sa.Text),
        sa.Column("metrics", sa.JSON),
        sa.Column("cost_usd", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("owner", sa.String(200)),
        sa.Column("event_count", sa.Integer, nullable=False),
    )
    op.create_index("runs_conversation", "runs", ["conversation_id", "position"])
    op.create_index("runs_user", "runs", ["user", "seq"])
    op.create_index("runs_status", "runs", ["status", "seq"])
    op.create_index("runs_model", "runs", ["model", "seq"])
    op.create_index("runs_template", "runs", ["template", "seq"])
    op.create_index("runs_created", "runs", ["created_at"])
    op.create_index("runs_evaluation", "runs", ["evaluation_id"])
    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("start", sa.Integer, primary_key=True),
        sa.Column("stop", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "templates",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user", sa.String(200)),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("template_hash", sa.String(64), nullable=False),
        sa.Column("dataset", sa.String(500), nullable=False),
        sa.Column("dataset_hash", sa.String(64), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
    )
    op.create_table(
        "evaluation_cells",
        sa.Column("evaluation_id", sa.String(40), sa.ForeignKey("evaluations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("case_id", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(300), primary_key=True),
        sa.Column("run_id", sa.String(40)),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "owners",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    op.create_table(
        "app_secrets",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_FTS if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("runs_fts_insert", "runs_fts_delete", "runs_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS runs_fts")
    for table in ("app_secrets", "owners", "evaluation_cells", "evaluations", "templates", "run_events", "runs"):
        op.drop_table(table)
