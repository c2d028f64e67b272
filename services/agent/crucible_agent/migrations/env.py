from crucible_common.database import run_alembic_env

run_alembic_env(schema="agent")
