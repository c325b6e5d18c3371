"""Alembic environment: radmon passes its own connection and settings (see radmon.store.migrate)."""

from alembic import context

from radmon.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
