"""AgentRunner over LlmService, a real ProviderPool and in-memory fakes: judge, fallbacks, forks, resume."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.domain.errors import ProviderError, ProviderRejected, ProviderUnavailable, UnknownProvider
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunResult,
    AgentRunStatus,
    Candidate,
    CandidateMetrics,
    ChatMessage,
    Checkpoint,
    Correlation,
    JudgeConfig,
    ProviderResponse,
    Recording,
    Role,
    SubagentConfig,
)
from crucible_agent.domain.pricing import DEFAULT_PRICES, PriceTable
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.agent_runs import AgentRunner
from crucible_agent.service_layer.llm import LlmService
from crucible_agent.service_layer.unit_of_work import AGENT_RUN
from crucible_common.errors import InvalidArgument
from tests.unit.agent.fakes import FakeLeaseStore, FakeProvider, FakeUowFactory

ALPHA = SubagentConfig("alpha", "openai", "gpt-4o-mini")
BETA = SubagentConfig("beta", "anthropic", "claude-haiku-4-5")
SUBAGENTS = (ALPHA, BETA)
JUDGE = JudgeConfig("openai", "gpt-4o-mini")


class Harness:
    def __init__(
        self,
        *,
        openai: list[ProviderResponse | ProviderError] | None = None,
        anthropic: list[ProviderResponse | ProviderError] | None = None,
        openai_always: ProviderError | None = None,
        anthropic_always: ProviderError | None = None,
    ) -> None:
        self.openai = FakeProvider("openai", openai or [], always=openai_always)
        self.anthropic = FakeProvider("anthropic", anthropic or [], always=anthropic_always)
        pool = ProviderPool(
            {"openai": self.openai, "anthropic": self.anthropic},
            concurrency=4,
            max_retries=1,
            retry_base_seconds=0.0001,
        )
        self.uow = FakeUowFactory()
        llm = LlmService(pool, PriceTable(DEFAULT_PRICES), self.uow, structured_retries=1, capture_prompts=False)
        self.leases = FakeLeaseStore(self.uow.state, AGENT_RUN, "test")
        self.runner = AgentRunner(
            llm, self.uow, self.leases, default_subagents=SUBAGENTS, default_judge=JUDGE, owner="test"
        )

    @property
    def providers(self) -> list[FakeProvider]:
        return [self.openai, self.anthropic]

    def subagent_requests(self) -> int:
        return sum(len(p.subagent_requests) for p in self.providers)

    def judge_requests(self) -> int:
        return sum(len(p.judge_requests) for p in self.providers)


def run_cmd(message: str = "Write a haiku about tests.", **kwargs: object) -> c.ExecuteAgentRun:
    return c.ExecuteAgentRun(message, **kwargs)  # type: ignore[arg-type]


async def test_two_subagents_and_a_judge_complete_the_run() -> None:
    h = Harness()

    result = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))

    assert result.run.status is AgentRunStatus.COMPLETED
    assert result.run.failure_reason == ""
    assert sorted(x.name for x in result.candidates) == ["alpha", "beta"]
    by_name = {x.name: x for x in result.candidates}
    assert by_name["alpha"].output == "openai answer 0"
    assert by_name["beta"].output == "anthropic answer 0"
    assert by_name["alpha"].metrics.attempts == 1
    assert result.errors == []
    decision = result.decision
    assert decision is not None
    assert not decision.fallback
    assert decision.fallback_reason == ""
    # The fake judge picks the last name it is offered.
    assert decision.candidate_name == "beta"
    assert decision.candidate_id == by_name["beta"].id
    assert (decision.provider, decision.model) == (JUDGE.provider, JUDGE.model)
    assert decision.rationale
    labels = [cp.label for cp in result.checkpoints]
    assert labels[0] == "start"
    assert sorted(labels[1:3]) == ["candidate:alpha", "candidate:beta"]
    assert labels[3] == "decision"
    assert [cp.sequence for cp in result.checkpoints] == [1, 2, 3, 4]
    assert result.checkpoints[0].state["message"] == "Write a haiku about tests."
    assert (h.subagent_requests(), h.judge_requests()) == (2, 1)
    judge_request = h.openai.judge_requests[0]
    assert "openai answer 0" in judge_request.messages[-1].content
    # Two subagent calls and the judge's, all stored with the run's id.
    calls = h.uow.state.llm_calls
    assert len(calls) == 3
    assert {x.correlation.agent_run_id for x in calls} == {result.run.id}
    assert sorted(x.correlation.purpose for x in calls) == ["judge", "subagent", "subagent"]
    lease = h.uow.state.runs[result.run.id]
    assert lease.lease_owner == "test"
    assert lease.lease_until is None


async def test_the_default_subagents_and_judge_apply_when_none_given() -> None:
    h = Harness()

    result = await h.runner.execute(run_cmd())

    assert result.run.subagents == SUBAGENTS
    assert result.run.judge == JUDGE
    assert result.run.status is AgentRunStatus.COMPLETED


async def test_a_failing_provider_is_recorded_and_the_single_candidate_wins() -> None:
    h = Harness(anthropic_always=ProviderUnavailable("anthropic", "overloaded"))

    result = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))

    assert result.run.status is AgentRunStatus.COMPLETED
    assert [x.name for x in result.candidates] == ["alpha"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.name, error.provider, error.reason) == ("beta", "anthropic", "PROVIDER_UNAVAILABLE")
    assert result.decision is not None
    assert result.decision.fallback
    assert result.decision.fallback_reason == "single_candidate"
    assert result.decision.candidate_name == "alpha"
    # No judge is asked to choose among one.
    assert h.judge_requests() == 0
    # max_retries=1: the failing provider was tried twice, and both failures are stored.
    assert len(h.anthropic.requests) == 2
    failed = [x for x in h.uow.state.llm_calls if x.provider == "anthropic"]
    assert [x.status.value for x in failed] == ["failed", "failed"]
    assert [cp.label for cp in result.checkpoints] == ["start", "candidate:alpha", "decision"]


async def test_a_failing_judge_falls_back_to_the_first_candidate() -> None:
    # openai call 0 is alpha's answer, call 1 the judge's.
    h = Harness(openai=[_text("alpha says"), ProviderRejected("openai", "context too long")])

    result = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))

    assert result.run.status is AgentRunStatus.COMPLETED
    assert result.decision is not None
    assert result.decision.fallback
    assert result.decision.fallback_reason.startswith("judge_failed")
    assert "PROVIDER_REJECTED_REQUEST" in result.decision.fallback_reason
    assert result.decision.candidate_name == "alpha"
    assert (result.decision.provider, result.decision.model) == ("", "")
    assert h.judge_requests() == 1
    # The judge's failed call is stored with the decision.
    judge_calls = [x for x in h.uow.state.llm_calls if x.correlation.purpose == "judge"]
    assert [x.status.value for x in judge_calls] == ["failed"]


async def test_a_judge_without_a_valid_answer_falls_back() -> None:
    h = Harness(openai=[_text("alpha says"), _text("I pick beta"), _text("beta, definitely")])

    result = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))

    assert result.decision is not None
    assert result.decision.fallback
    assert result.decision.fallback_reason.startswith("judge_failed: STRUCTURED_OUTPUT_INVALID")
    assert result.decision.candidate_name == "alpha"


async def test_every_subagent_failing_fails_the_run() -> None:
    h = Harness(
        openai_always=ProviderRejected("openai", "bad model"),
        anthropic_always=ProviderUnavailable("anthropic", "down"),
    )

    result = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))

    assert result.run.status is AgentRunStatus.FAILED
    assert result.run.failure_reason.startswith("every subagent failed")
    assert "alpha: PROVIDER_REJECTED_REQUEST" in result.run.failure_reason
    assert "beta: PROVIDER_UNAVAILABLE" in result.run.failure_reason
    assert result.candidates == []
    assert result.decision is None
    assert sorted(e.name for e in result.errors) == ["alpha", "beta"]
    assert h.judge_requests() == 0
    assert [cp.label for cp in result.checkpoints] == ["start"]


async def test_a_fork_from_a_candidate_reruns_only_what_follows() -> None:
    h = Harness()
    source = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))
    first = next(cp for cp in source.checkpoints if cp.sequence == 2)
    kept_name = first.label.removeprefix("candidate:")
    other = next(s for s in SUBAGENTS if s.name != kept_name)
    other_provider = h.openai if other.provider == "openai" else h.anthropic
    before_other = len(other_provider.subagent_requests)
    before_subagents, before_judge = h.subagent_requests(), h.judge_requests()

    fork = await h.runner.fork(c.ForkAgentRun(source.run.id, checkpoint_id=first.id, label="retry", reason="test"))

    assert fork.run.id != source.run.id
    assert fork.run.status is AgentRunStatus.COMPLETED
    assert fork.run.fork_of is not None
    assert (fork.run.fork_of.run_id, fork.run.fork_of.checkpoint_id) == (source.run.id, first.id)
    assert fork.run.fork_of.label == "retry"
    assert h.subagent_requests() == before_subagents + 1
    assert len(other_provider.subagent_requests) == before_other + 1
    assert h.judge_requests() == before_judge + 1
    kept_source = next(x for x in source.candidates if x.name == kept_name)
    kept_fork = next(x for x in fork.candidates if x.name == kept_name)
    assert kept_fork.output == kept_source.output
    assert kept_fork.llm_call_id == kept_source.llm_call_id
    assert kept_fork.id != kept_source.id
    assert sorted(x.name for x in fork.candidates) == ["alpha", "beta"]
    assert [cp.label for cp in fork.checkpoints] == ["start", first.label, f"candidate:{other.name}", "decision"]
    assert [cp.sequence for cp in fork.checkpoints] == [1, 2, 3, 4]
    assert fork.decision is not None
    assert not fork.decision.fallback
    # The source run is left as it was.
    assert len((await h.runner.result(source.run.id)).checkpoints) == 4


async def test_a_fork_from_the_decision_calls_no_model() -> None:
    h = Harness()
    source = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))
    requests_before = sum(len(p.requests) for p in h.providers)
    calls_before = len(h.uow.state.llm_calls)

    fork = await h.runner.fork(c.ForkAgentRun(source.run.id, checkpoint_label="decision"))

    assert sum(len(p.requests) for p in h.providers) == requests_before
    assert len(h.uow.state.llm_calls) == calls_before
    assert fork.run.status is AgentRunStatus.COMPLETED
    assert fork.decision is not None
    assert source.decision is not None
    assert fork.decision.candidate_name == source.decision.candidate_name
    assert fork.decision.agent_run_id == fork.run.id
    assert fork.decision.candidate_id in {x.id for x in fork.candidates}
    assert [cp.label for cp in fork.checkpoints] == [cp.label for cp in source.checkpoints]


async def test_an_empty_message_is_invalid() -> None:
    h = Harness()
    with pytest.raises(InvalidArgument) as info:
        await h.runner.execute(run_cmd("   ", subagents=SUBAGENTS, judge=JUDGE))
    assert info.value.reason == "VALIDATION_FAILED"
    assert any(v.field == "message" for v in info.value.violations)
    assert h.uow.state.runs == {}


async def test_duplicate_subagent_names_are_invalid() -> None:
    h = Harness()
    twin = SubagentConfig("alpha", "anthropic", "claude-haiku-4-5")
    with pytest.raises(InvalidArgument) as info:
        await h.runner.execute(run_cmd(subagents=(ALPHA, twin), judge=JUDGE))
    assert [v.field for v in info.value.violations] == ["subagents[1].name"]
    assert "duplicate" in info.value.violations[0].description
    assert h.uow.state.runs == {}


async def test_an_unknown_provider_is_refused() -> None:
    h = Harness()
    with pytest.raises(UnknownProvider) as info:
        await h.runner.execute(run_cmd(subagents=(ALPHA, SubagentConfig("gamma", "mistral", "m"))))
    assert [v.field for v in info.value.violations] == ["subagents[1].provider"]
    assert h.uow.state.runs == {}
    assert sum(len(p.requests) for p in h.providers) == 0


async def test_an_unknown_judge_provider_is_refused() -> None:
    h = Harness()
    with pytest.raises(UnknownProvider):
        await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JudgeConfig("mistral", "m")))


async def test_a_too_long_correlation_id_is_invalid() -> None:
    h = Harness()
    with pytest.raises(InvalidArgument) as info:
        await h.runner.execute(run_cmd(subagents=SUBAGENTS, correlation=Correlation(project_id="p" * 101)))
    assert [v.field for v in info.value.violations] == ["correlation.project_id"]
    assert h.uow.state.runs == {}


async def test_every_text_a_run_or_a_fork_carries_is_bounded_over_grpc_as_over_rest() -> None:
    h = Harness()
    long_prompt = SubagentConfig("alpha", "openai", "gpt-4o-mini", system_prompt="x" * 20_001)
    history = (ChatMessage(Role.USER, "y" * 200_001),)
    with pytest.raises(InvalidArgument) as run:
        await h.runner.execute(
            run_cmd(subagents=(long_prompt,), judge=JudgeConfig("openai", "gpt-4o-mini", "z" * 20_001), history=history)
        )
    source = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))
    with pytest.raises(InvalidArgument) as fork:
        await h.runner.fork(
            c.ForkAgentRun(source.run.id, checkpoint_label="l" * 201, label="l" * 201, reason="r" * 2_001)
        )

    assert run.value.reason == fork.value.reason == "VALIDATION_FAILED"
    assert [v.field for v in run.value.violations] == [
        "history[0].content",
        "subagents[0].system_prompt",
        "judge.instructions",
    ]
    assert [v.field for v in fork.value.violations] == ["checkpoint_label", "label", "reason"]
    assert list(h.uow.state.runs) == [source.run.id]


async def test_a_stale_run_is_resumed_from_its_checkpoints() -> None:
    h = Harness()
    now = datetime.now(UTC)
    run = AgentRun(
        id="11111111-1111-1111-1111-111111111111",
        status=AgentRunStatus.RUNNING,
        message="Write a haiku about tests.",
        history=(),
        subagents=SUBAGENTS,
        judge=JUDGE,
        workspace_ref="",
        metadata={},
        correlation=Correlation(project_id="p1"),
        recording=Recording(),
        fork_of=None,
        failure_reason="",
        created_at=now - timedelta(minutes=1),
        updated_at=now - timedelta(minutes=1),
    )
    alpha = Candidate(
        "22222222-2222-2222-2222-222222222222",
        run.id,
        "alpha",
        "openai",
        "gpt-4o-mini",
        "alpha wrote this before its process died",
        CandidateMetrics(5, 10, 5, 0.0001, 1, "gpt-4o-mini"),
        "33333333-3333-3333-3333-333333333333",
        now - timedelta(seconds=50),
    )
    async with h.uow() as uow:
        await uow.repo.add_run(run, "agent_runner")
        await uow.take_lease(AGENT_RUN, run.id, "dead-process")
        start_state = {"message": run.message, "subagents": [asdict(s) for s in SUBAGENTS], "judge": asdict(JUDGE)}
        await uow.repo.add_checkpoint(Checkpoint("cp-1", run.id, 1, "start", start_state, run.created_at))
        await uow.repo.add_candidate(alpha)
        await uow.repo.add_checkpoint(Checkpoint("cp-2", run.id, 2, "candidate:alpha", {}, alpha.created_at))
        await uow.commit()
    h.uow.state.runs[run.id].lease_until = now - timedelta(seconds=30)

    claimed = await h.runner.resume_stale()

    assert claimed == 1
    assert h.uow.state.runs[run.id].lease_owner == "test"
    result = await _until_finished(h.runner, run.id)
    assert result.run.status is AgentRunStatus.COMPLETED
    assert sorted(x.name for x in result.candidates) == ["alpha", "beta"]
    assert next(x for x in result.candidates if x.name == "alpha").output == alpha.output
    # Only the missing subagent and the judge were asked.
    assert [r.model for r in h.anthropic.subagent_requests] == ["claude-haiku-4-5"]
    assert h.openai.subagent_requests == []
    assert h.judge_requests() == 1
    assert [cp.label for cp in result.checkpoints] == ["start", "candidate:alpha", "candidate:beta", "decision"]
    assert [cp.sequence for cp in result.checkpoints] == [1, 2, 3, 4]
    # Nothing is left to take over.
    assert await h.runner.resume_stale() == 0


async def test_a_run_with_a_live_lease_or_another_driver_is_not_taken() -> None:
    h = Harness()
    now = datetime.now(UTC)
    result = await h.runner.execute(run_cmd(subagents=SUBAGENTS, judge=JUDGE))
    template = result.run
    live = AgentRun(**{**vars(template), "id": "live", "status": AgentRunStatus.RUNNING})
    other = AgentRun(**{**vars(template), "id": "other", "status": AgentRunStatus.RUNNING})
    async with h.uow() as uow:
        await uow.repo.add_run(live, "agent_runner")
        await uow.take_lease(AGENT_RUN, live.id, "someone")
        await uow.repo.add_run(other, "sprint")
        await uow.commit()
    h.uow.state.runs["live"].lease_until = now + timedelta(minutes=1)

    assert await h.runner.resume_stale() == 0
    assert h.uow.state.runs["live"].lease_owner == "someone"


async def _until_finished(runner: AgentRunner, run_id: str) -> AgentRunResult:
    for _ in range(500):
        result = await runner.result(run_id)
        if result.run.status is not AgentRunStatus.RUNNING:
            return result
        await asyncio.sleep(0.002)
    raise AssertionError(f"agent run {run_id} did not finish")


def _text(text: str) -> ProviderResponse:
    return ProviderResponse(text, (), "stop", "gpt-4o-mini", 10, 5)
