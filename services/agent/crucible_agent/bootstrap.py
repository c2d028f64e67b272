"""The agent service's composition root: providers, prices, the LLM service, the runner."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.agent.v1 import agent_service_pb2, agent_service_pb2_grpc, sprint_service_pb2, sprint_service_pb2_grpc
from crucible_agent.adapters.providers.anthropic_provider import AnthropicProvider
from crucible_agent.adapters.providers.base import LlmProvider, warm_up
from crucible_agent.adapters.providers.openai_provider import OpenAIProvider
from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.adapters.sandbox import SandboxLimits
from crucible_agent.adapters.sprint_repository import SPRINT_EVENTS_CHANNEL
from crucible_agent.adapters.sprint_workspace import LocalWorkspaces
from crucible_agent.adapters.tables import LEASED_AGENT_RUNS, LEASED_SPRINTS, SCHEMA
from crucible_agent.adapters.unit_of_work import SqlUnitOfWork
from crucible_agent.config import AgentSettings
from crucible_agent.domain.model import JudgeConfig, SubagentConfig
from crucible_agent.domain.pricing import PriceTable
from crucible_agent.entrypoints.grpc_servicer import AgentServicer
from crucible_agent.entrypoints.sprint_servicer import SprintServicer
from crucible_agent.service_layer.agent_runs import AgentRunner
from crucible_agent.service_layer.call_log import CallLog
from crucible_agent.service_layer.llm import LlmService
from crucible_agent.service_layer.sprints.phase_runner import PhaseRunner
from crucible_agent.service_layer.sprints.workflow import SprintDeps
from crucible_agent.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory
from crucible_common.database import create_engine
from crucible_common.grpc_server import ServiceDefinition
from crucible_common.leases import LEASE_SECONDS, Lease, SqlLeaseStore, Workers, process_owner
from crucible_common.notify import Listener
from crucible_common.runtime import ServiceProcess

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
SPRINT_SERVICE_NAME = sprint_service_pb2.DESCRIPTOR.services_by_name["SprintService"].full_name


logger = logging.getLogger(__name__)


def build_providers(settings: AgentSettings) -> dict[str, LlmProvider]:
    """A provider is configured by an API key, a base URL (any compatible server), or both."""
    providers: dict[str, LlmProvider] = {}
    timeout = settings.llm_timeout_seconds
    if settings.openai_api_key or settings.openai_base_url:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        providers["openai"] = OpenAIProvider(api_key=key, base_url=settings.openai_base_url, timeout=timeout)
    if settings.anthropic_api_key or settings.anthropic_base_url:
        key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else "unused"
        providers["anthropic"] = AnthropicProvider(api_key=key, base_url=settings.anthropic_base_url, timeout=timeout)
    if not providers:
        # Said at start, not first at a user's model call: a replica started by hand (outside
        # `crucible up`, which points both at the emulator when no key is set) has none.
        logger.warning(
            "no LLM provider is configured: every model call will be refused. Set OPENAI_API_KEY or "
            "ANTHROPIC_API_KEY, or CRUCIBLE_OPENAI_BASE_URL / CRUCIBLE_ANTHROPIC_BASE_URL for a "
            "compatible server (the offline emulator: `crucible-emulator`)"
        )
    return providers


def uow_factory(engine: AsyncEngine, lease_seconds: float = LEASE_SECONDS) -> UowFactory:
    def make(
        *, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None
    ) -> AbstractUnitOfWork:
        return SqlUnitOfWork(
            engine, read_only=read_only, single_statement=single_statement, lease=lease, lease_seconds=lease_seconds
        )

    return make


@dataclass
class AgentCore:
    llm: LlmService
    runner: AgentRunner
    sprints: SprintDeps
    scheduler: Workers
    pool: ProviderPool
    uow: UowFactory
    calls: CallLog
    updates: Listener


def build_core(settings: AgentSettings, engine: AsyncEngine, providers: dict[str, LlmProvider]) -> AgentCore:
    pool = ProviderPool(
        providers,
        concurrency=settings.llm_concurrency,
        max_retries=settings.llm_max_retries,
        retry_base_seconds=settings.llm_retry_base_seconds,
    )
    uow = uow_factory(engine, settings.lease_seconds)
    llm = LlmService(
        pool,
        PriceTable.load(settings.llm_prices_file),
        uow,
        structured_retries=settings.structured_output_retries,
        capture_prompts=settings.capture_prompts,
    )
    models = {"openai": settings.openai_model, "anthropic": settings.anthropic_model}
    defaults = tuple(SubagentConfig(name, name, models[name]) for name in ("openai", "anthropic") if name in providers)
    judge = JudgeConfig(defaults[0].provider, defaults[0].model) if defaults else None
    owner = process_owner()
    updates = Listener(engine.url.render_as_string(hide_password=False), SPRINT_EVENTS_CHANNEL)
    runner = AgentRunner(
        llm,
        uow,
        SqlLeaseStore(engine, LEASED_AGENT_RUNS, owner, seconds=settings.lease_seconds),
        default_subagents=defaults,
        default_judge=judge,
        owner=owner,
        heartbeat_seconds=settings.lease_heartbeat_seconds,
    )
    sprints = SprintDeps(
        llm=llm,
        runner=runner,
        uow=uow,
        workspaces=LocalWorkspaces(
            (settings.artifacts_dir or settings.state_dir / "artifacts").resolve(),
            SandboxLimits(wall_seconds=settings.sandbox_timeout_seconds),
        ),
        leases=SqlLeaseStore(engine, LEASED_SPRINTS, owner, seconds=settings.lease_seconds),
        planners=defaults,
        judge=judge,
        owner=owner,
        updates=updates,
        heartbeat_seconds=settings.lease_heartbeat_seconds,
    )
    scheduler = Workers(
        sprints.leases,
        lambda lease: PhaseRunner(sprints, lease).run(),
        heartbeat_seconds=sprints.heartbeat_seconds,
        resume_batch=5,
    )
    calls = CallLog(
        uow, owner=owner, claim_seconds=settings.lease_seconds, heartbeat_seconds=settings.lease_heartbeat_seconds
    )
    return AgentCore(llm, runner, sprints, scheduler, pool, uow, calls, updates)


def build(settings: AgentSettings) -> ServiceProcess:
    assert settings.database_url, "checked by the runtime before build()"
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size, application_name="crucible-agent")
    core = build_core(settings, engine, build_providers(settings))
    servicer = AgentServicer(core.llm, core.runner, core.uow, core.calls)
    sprint_servicer = SprintServicer(core.sprints, core.scheduler)
    return ServiceProcess(
        name="agent",
        address=settings.agent_addr,
        definitions=[
            ServiceDefinition(
                SERVICE_NAME, lambda server: agent_service_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
            ),
            ServiceDefinition(
                SPRINT_SERVICE_NAME,
                lambda server: sprint_service_pb2_grpc.add_SprintServiceServicer_to_server(sprint_servicer, server),
            ),
        ],
        engine=engine,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        # After the scheduler and the keyed calls: work they cancel leaves its calls in flight to
        # store (LlmService.drain).
        closers=[core.scheduler.close, core.calls.close, core.llm.drain, core.updates.close, core.pool.close],
        background=[warm_up, core.runner.resume_forever, core.scheduler.resume_forever, core.calls.renew_forever],
    )
