"""The spec service's composition root: the only place its parts are built and wired."""

from __future__ import annotations

from pathlib import Path

from crucible.agent.v1 import agent_service_pb2_grpc, sprint_service_pb2_grpc
from crucible.run.v1 import run_service_pb2_grpc
from crucible.spec.v1 import spec_service_pb2, spec_service_pb2_grpc
from crucible_common.clients import service_channel
from crucible_common.database import create_engine
from crucible_common.grpc_server import ServiceDefinition
from crucible_common.notify import Listener
from crucible_common.runtime import ServiceProcess
from crucible_common.settings import Settings
from crucible_spec.adapters.agent_client import AgentPlanningInterviewer, PlanningModels
from crucible_spec.adapters.architect_client import AgentArchitect
from crucible_spec.adapters.repository import PROJECT_CHANGES_CHANNEL
from crucible_spec.adapters.run_client import RunServiceAdvisor
from crucible_spec.adapters.sprint_client import AgentSprintCreator
from crucible_spec.adapters.tables import SCHEMA
from crucible_spec.adapters.unit_of_work import SqlUnitOfWork
from crucible_spec.config import SpecSettings
from crucible_spec.entrypoints.grpc_servicer import SpecServicer
from crucible_spec.service_layer.chat_turns import TurnDeps

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = spec_service_pb2.DESCRIPTOR.services_by_name["SpecService"].full_name


def build(settings: Settings) -> ServiceProcess:
    # The shared settings are enough to run: the planning models then come from the environment or
    # their defaults.
    config = settings if isinstance(settings, SpecSettings) else SpecSettings(**settings.model_dump())
    assert config.database_url, "checked by the runtime before build()"
    engine = create_engine(config.database_url, pool_size=config.db_pool_size, application_name="crucible-spec")
    agent_channel = service_channel(config.agent_addr, config)
    interviewer = AgentPlanningInterviewer(
        agent_service_pb2_grpc.AgentServiceStub(agent_channel),
        PlanningModels(
            openai_model=config.planning_openai_model,
            anthropic_model=config.planning_anthropic_model,
            judge_provider=config.planning_judge_provider,
            judge_model=config.planning_judge_model,
        ),
        timeout=config.planning_timeout_seconds,
    )
    run_channel = service_channel(config.run_addr, config)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    def read_uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, read_only=True)

    project_changes = Listener(config.database_url, PROJECT_CHANGES_CHANNEL)
    servicer = SpecServicer(
        uow=uow,
        read_uow=read_uow,
        interviewer=interviewer,
        sprints=AgentSprintCreator(
            sprint_service_pb2_grpc.SprintServiceStub(agent_channel), timeout=config.sprint_timeout_seconds
        ),
        turns=TurnDeps(
            uow=uow,
            read_uow=read_uow,
            architect=AgentArchitect(
                agent_service_pb2_grpc.AgentServiceStub(agent_channel),
                provider=config.architect_provider,
                model=config.architect_model,
                timeout=config.architect_timeout_seconds,
            ),
            # Preflight and reads only: the chat cannot start a run (see adapters/run_client.py).
            runs=RunServiceAdvisor(
                run_service_pb2_grpc.RunServiceStub(run_channel), timeout=config.run_timeout_seconds
            ),
        ),
        project_changes=project_changes,
    )
    return ServiceProcess(
        name="spec",
        address=config.spec_addr,
        definitions=[
            ServiceDefinition(
                SERVICE_NAME, lambda server: spec_service_pb2_grpc.add_SpecServiceServicer_to_server(servicer, server)
            )
        ],
        engine=engine,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        # The change feeds end as the service stops: a gateway follows one for as long as it runs.
        draining=[project_changes.close],
        closers=[project_changes.close, agent_channel.close, run_channel.close],
    )
