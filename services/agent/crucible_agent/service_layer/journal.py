"""The one writer of the agent-run aggregate: a run, its candidates, errors, decision and checkpoints.

The AgentRunner (subagents, then a judge) and a sprint phase's tool loop both record their agent
runs here, in the caller's unit of work, so every run has the same shape whoever drove it: a
``start`` checkpoint, a ``candidate:<name>`` checkpoint per candidate, a ``decision`` checkpoint.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime

from crucible_agent.domain.model import (
    AgentRun,
    AgentRunStatus,
    Candidate,
    Checkpoint,
    Decision,
    JsonObject,
    SubagentError,
)
from crucible_agent.service_layer.unit_of_work import AGENT_RUN, AbstractUnitOfWork

# Who continues a run after a crash: the AgentRunner, or the sprint whose phase it is.
AGENT_RUNNER = "agent_runner"
SPRINT = "sprint"


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC)


async def open_run(uow: AbstractUnitOfWork, run: AgentRun, *, driver: str, start_state: JsonObject) -> None:
    await uow.repo.add_run(run, driver)
    await uow.repo.add_checkpoint(Checkpoint(new_id(), run.id, 1, "start", start_state, run.created_at))


async def add_candidate(uow: AbstractUnitOfWork, candidate: Candidate) -> None:
    await uow.repo.get_run(candidate.agent_run_id, for_update=True)
    await uow.repo.add_candidate(candidate)
    await _checkpoint(
        uow, candidate.agent_run_id, f"candidate:{candidate.name}", candidate_state(candidate), candidate.created_at
    )


async def add_error(uow: AbstractUnitOfWork, error: SubagentError, at: datetime) -> None:
    await uow.repo.add_subagent_error(error, at)


async def decide(uow: AbstractUnitOfWork, decision: Decision, at: datetime) -> None:
    """Store the decision with its checkpoint; the run is then complete."""
    await uow.repo.get_run(decision.agent_run_id, for_update=True)
    await uow.repo.set_decision(decision, at)
    await _checkpoint(uow, decision.agent_run_id, "decision", asdict(decision), at)
    await uow.repo.finish_run(decision.agent_run_id, AgentRunStatus.COMPLETED, "", at)


async def fail(uow: AbstractUnitOfWork, run_id: str, reason: str, at: datetime) -> bool:
    """End a running run as failed; False when it had already ended."""
    run = await uow.repo.get_run(run_id, for_update=True)
    if run is None or run.status is not AgentRunStatus.RUNNING:
        return False
    await uow.repo.finish_run(run_id, AgentRunStatus.FAILED, reason, at)
    return True


async def cancel(uow: AbstractUnitOfWork, run_id: str, reason: str, at: datetime) -> bool:
    """End a running run as cancelled and revoke its lease; False when it had already ended (or never began)."""
    run = await uow.repo.get_run(run_id, for_update=True)
    if run is None or run.status is not AgentRunStatus.RUNNING:
        return False
    await uow.repo.finish_run(run_id, AgentRunStatus.CANCELLED, reason, at)
    # Whoever drives it (this process, another, or none since its process died) may not store
    # one more step of it nor make one more model call for it: both are fenced by this lease.
    await uow.revoke_lease(AGENT_RUN, run_id)
    return True


def candidate_state(candidate: Candidate) -> JsonObject:
    """A candidate as its checkpoint keeps it (what a fork carries over)."""
    return {
        "candidate_id": candidate.id,
        "name": candidate.name,
        "provider": candidate.provider,
        "model_name": candidate.model,
        "output": candidate.output,
        "structured": candidate.structured,
        "metrics": asdict(candidate.metrics),
    }


async def _checkpoint(uow: AbstractUnitOfWork, run_id: str, label: str, state: JsonObject, at: datetime) -> None:
    sequence = await uow.repo.next_checkpoint_sequence(run_id)
    await uow.repo.add_checkpoint(Checkpoint(new_id(), run_id, sequence, label, state, at))
