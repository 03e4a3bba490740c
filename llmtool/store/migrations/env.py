"""Alembic's entry point. llmtool runs migrations itself (`llmtool.store.migrate`), on a connection
it passes in `config.attributes["connection"]`, so there is no URL or logging setup here."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
