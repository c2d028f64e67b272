"""Every service's migrations, from an empty database, the way services run them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from crucible_agent import bootstrap as agent_bootstrap
from crucible_common.database import alembic_config, create_engine, migrate
from crucible_run import bootstrap as run_bootstrap
from crucible_snapshot import bootstrap as snapshot_bootstrap
from crucible_spec import bootstrap as spec_bootstrap
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

SERVICES: dict[str, Path] = {
    "spec": spec_bootstrap.MIGRATIONS,
    "run": run_bootstrap.MIGRATIONS,
    "snapshot": snapshot_bootstrap.MIGRATIONS,
    "agent": agent_bootstrap.MIGRATIONS,
}


async def test_all_schemas_migrate_from_empty_concurrently_and_idempotently(postgres_admin_url: str) -> None:
    async with fresh_database(postgres_admin_url, "migrations") as url:
        engine = create_engine(url, pool_size=8)
        # Two replicas of every service starting at once must not trip over each other.
        await asyncio.gather(
            *(migrate(engine, schema=s, script_location=p) for s, p in SERVICES.items() for _ in range(2))
        )
        async with engine.connect() as conn:
            for schema, path in SERVICES.items():
                version = await conn.scalar(text(f'SELECT version_num FROM "{schema}".alembic_version'))
                head = ScriptDirectory.from_config(alembic_config(path, schema)).get_current_head()
                assert version == head, schema
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names(schema="spec"))
            assert set(tables) >= {
                "projects",
                "chat_sessions",
                "chat_messages",
                "problem_specs",
                "world_models",
                "provenance_entries",
                "specs",
            }
            public = await conn.run_sync(lambda c: inspect(c).get_table_names(schema="public"))
            assert public == [], "no service writes outside its own schema"
        await engine.dispose()


async def test_spec_downgrades_to_base_and_upgrades_again(postgres_admin_url: str) -> None:
    async with fresh_database(postgres_admin_url, "downgrade") as url:
        engine = create_engine(url, pool_size=2)
        await migrate(engine, schema="spec", script_location=spec_bootstrap.MIGRATIONS)
        config = alembic_config(spec_bootstrap.MIGRATIONS, "spec")

        def downgrade(conn: Connection) -> None:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")

        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with engine.connect() as conn:
            assert await conn.run_sync(lambda c: inspect(c).get_table_names(schema="spec")) == ["alembic_version"]
        await migrate(engine, schema="spec", script_location=spec_bootstrap.MIGRATIONS)
        async with engine.connect() as conn:
            assert "projects" in await conn.run_sync(lambda c: inspect(c).get_table_names(schema="spec"))
        await engine.dispose()


async def test_the_replay_projects_made_before_they_were_marked_are_marked(postgres_admin_url: str) -> None:
    """0005 reads the snapshot's id back from the description the snapshot service wrote; a project
    whose description says anything else stays a user's."""
    snapshot_id = "5b0f3c1e-9a51-4c6e-8d0b-2f7a9e3c4d11"
    async with fresh_database(postgres_admin_url, "replay_projects") as url:
        engine = create_engine(url, pool_size=2)
        config = alembic_config(spec_bootstrap.MIGRATIONS, "spec")

        def to(revision: str) -> Callable[[Connection], None]:
            def run(conn: Connection) -> None:
                config.attributes["connection"] = conn
                command.upgrade(config, revision)

            return run

        async with engine.begin() as conn:
            await conn.execute(text('CREATE SCHEMA IF NOT EXISTS "spec"'))
            await conn.run_sync(to("0004"))
            for title, description in (
                ("Replay: bridge", f"Restored from snapshot bridge (v2) ({snapshot_id}) to replay it."),
                ("Mine", f"Notes on snapshot {snapshot_id} to replay it."),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO spec.projects (id, title, description, created_at, updated_at) "
                        "VALUES (gen_random_uuid(), :title, :description, now(), now())"
                    ),
                    {"title": title, "description": description},
                )
            await conn.run_sync(to("0005"))
            rows = (await conn.execute(text("SELECT title, replay_of_snapshot_id FROM spec.projects"))).all()
        await engine.dispose()

    assert {title: str(marked) if marked else None for title, marked in rows} == {
        "Replay: bridge": snapshot_id,
        "Mine": None,
    }
