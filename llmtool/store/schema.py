"""The tables as SQLAlchemy Core sees them, for queries. The migrations (`migrations/versions/`)
create and change them; this module must describe what the newest migration leaves.

Times are Unix seconds (floats): the same on SQLite and PostgreSQL, and cheap to compare.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only makes an INTEGER PRIMARY KEY the rowid (which FTS5's external content needs).
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

runs = sa.Table(
    "runs",
    metadata,
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
    sa.Column("reasoning", sa.Text, nullable=False, server_default=""),
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

# A run's events in order, a chunk per write: events [start, stop) as a JSON array.
run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("start", sa.Integer, primary_key=True),
    sa.Column("stop", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

templates = sa.Table(
    "templates",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
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
    sa.Column("name", sa.String(100)),
    sa.Column("repeats", sa.Integer, nullable=False, server_default="1"),
)

evaluation_cells = sa.Table(
    "evaluation_cells",
    metadata,
    sa.Column("evaluation_id", sa.String(40), sa.ForeignKey("evaluations.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("case_id", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(300), primary_key=True),
    sa.Column("run_id", sa.String(40)),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("runs", sa.JSON),  # [CellRun]: each repeat's verdict, assertions and measures
)

# Every process that runs runs, with its heartbeat: a run whose owner stopped beating is interrupted.
owners = sa.Table(
    "owners",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

# Values every process of a deployment must share (the app's secret key), made once.
app_secrets = sa.Table(
    "app_secrets",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# A client's Idempotency-Key → the run its first request started (per user; "" without logins).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Login sessions, keyed by the SHA-256 of the browser's token (the token itself is never stored).
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("stamp", sa.String(32), nullable=False, server_default=""),  # the password it was opened with
)

# API tokens for scripts, keyed by the SHA-256 of the token (shown once to its user, never stored).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user", sa.String(200), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("stamp", sa.String(32), nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used", sa.Float),
)
