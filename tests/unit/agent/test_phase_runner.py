"""The sprint workflow on fakes: Discovery, three coding attempts with feedback, Verification, resume, leases."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.domain.model import AgentRunStatus, JudgeConfig, LlmCallStatus, Role, SubagentConfig, ToolCall
from crucible_agent.domain.pricing import DEFAULT_PRICES, PriceTable
from crucible_agent.domain.sprints import (
    Phase,
    PhaseAttemptStatus,
    PlanningStatus,
    SpecSnapshot,
    Sprint,
    SprintStatus,
    ToolCalled,
    Trigger,
    Verdict,
    VerdictOutcome,
)
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.agent_runs import AgentRunner
from crucible_agent.service_layer.llm import LlmService
from crucible_agent.service_layer.sprints import handlers
from crucible_agent.service_layer.sprints.phase_runner import PhaseRunner
from crucible_agent.service_layer.sprints.tool_loop import MAX_TOOL_STEPS
from crucible_agent.service_layer.sprints.workflow import SprintDeps
from crucible_agent.service_layer.unit_of_work import AGENT_RUN, SPRINT
from crucible_common.leases import Lease, LeaseLost, Workers
from tests.unit.agent.fakes import FakeLeaseStore, FakeUnitOfWork, FakeUowFactory, NoUpdates
from tests.unit.agent.sprint_fakes import PLAN, FakeWorkspaces, SprintModel, report

OPENAI = SubagentConfig("openai", "openai", "gpt-4o-mini")
ANTHROPIC = SubagentConfig("anthropic", "anthropic", "claude-haiku-4-5")
SPEC = SpecSnapshot(
    str(uuid.uuid4()), "Hello", "Write hello.py printing Hello, World!", PlanningStatus.ANSWERED, (("Python?", "3.11"),)
)


class Crash(BaseException):
    """The process dies here: nothing below the raise runs, nothing uncommitted is kept."""


class Harness:
    def __init__(self, openai: SprintModel | None = None, anthropic: SprintModel | None = None) -> None:
        self.uow = FakeUowFactory()
        self.workspaces = FakeWorkspaces()
        self.connect(openai or SprintModel("openai"), anthropic or SprintModel("anthropic", judge_choice="anthropic"))

    def connect(
        self,
        openai: SprintModel,
        anthropic: SprintModel,
        owner: str = "p1",
        configured: tuple[str, ...] = ("openai", "anthropic"),
    ) -> None:
        """(Re)build the process: new models and runners over the same stored state; only the
        ``configured`` providers have a key (or a base URL)."""
        self.openai, self.anthropic = openai, anthropic
        models = {"openai": openai, "anthropic": anthropic}
        pool = ProviderPool(
            {name: models[name] for name in configured}, concurrency=4, max_retries=0, retry_base_seconds=0
        )
        llm = LlmService(pool, PriceTable(DEFAULT_PRICES), self.uow, structured_retries=0, capture_prompts=False)
        self.run_leases = FakeLeaseStore(self.uow.state, AGENT_RUN, owner)
        judge = JudgeConfig("anthropic", "claude-haiku-4-5")
        runner = AgentRunner(
            llm, self.uow, self.run_leases, default_subagents=(OPENAI, ANTHROPIC), default_judge=judge, owner=owner
        )
        self.leases = FakeLeaseStore(self.uow.state, SPRINT, owner)
        self.deps = SprintDeps(
            llm,
            runner,
            self.uow,
            self.workspaces,
            self.leases,
            (OPENAI, ANTHROPIC),
            judge,
            owner,
            NoUpdates(),
            heartbeat_seconds=60,
        )

    async def start(self) -> Lease:
        sprint = await handlers.create_sprint(c.CreateSprint("hello sprint", "greet", SPEC), self.uow)
        async with self.uow() as uow:
            await uow.sprints.start(sprint.id, Trigger("click-1", "test", datetime.now(UTC)))
            lease = await uow.take_lease(SPRINT, sprint.id, self.deps.owner)
            await uow.commit()
        return lease

    async def sprint(self, sprint_id: str) -> Sprint:
        return await handlers.get_sprint(sprint_id, self.uow)

    def events(self) -> list[str]:
        return [e.type.value for e in self.uow.state.events]

    def lapse_leases(self) -> None:
        past = datetime.now(UTC) - timedelta(minutes=1)
        for run in self.uow.state.runs.values():
            run.lease_until = past
        for sprint in self.uow.state.sprints.values():
            sprint.lease_until = past


def phases(sprint: Sprint) -> list[tuple[str, int, str]]:
    return [(a.phase.value, a.attempt, a.status.value) for a in sprint.phases]


async def test_discovery_plans_with_both_providers_and_the_judges_choice_codes_it() -> None:
    h = Harness()
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.COMPLETED, sprint.failure_reason
    assert phases(sprint) == [
        ("discovery", 1, "completed"),
        ("coding", 1, "completed"),
        ("verification", 1, "completed"),
    ]
    discovery = sprint.attempt(Phase.DISCOVERY, 1)
    assert discovery is not None
    assert discovery.output.plan is not None
    assert discovery.output.plan.plan_markdown == PLAN["plan_markdown"]
    assert discovery.output.coder == ANTHROPIC
    assert h.workspaces.workspace.files["implementation_plan.md"] == PLAN["plan_markdown"]
    # Both planned; the judge's choice (anthropic) coded and verified; openai only planned.
    assert len(h.openai.calls("plan")) == 1
    assert len(h.anthropic.calls("plan")) == 1
    assert h.openai.calls("code") == []
    assert len(h.anthropic.calls("code")) == 3
    assert len(h.anthropic.calls("verify")) == 2
    assert h.events() == [
        "sprint.created",
        "phase.started",
        "candidate.completed",
        "candidate.completed",
        "judge.decided",
        "phase.completed",
        "phase.started",
        "tool.called",
        "tool.called",
        "candidate.completed",
        "phase.completed",
        "phase.started",
        "tool.called",
        "candidate.completed",
        "phase.completed",
        "sprint.completed",
    ]
    coding = sprint.attempt(Phase.CODING, 1)
    assert coding is not None
    assert [m.role for m in coding.output.messages][:2] == [Role.SYSTEM, Role.USER]
    verification = sprint.attempt(Phase.VERIFICATION, 1)
    assert verification is not None
    assert verification.output.test_report == report(True)


async def test_each_coding_attempt_is_told_why_the_previous_one_failed() -> None:
    coder = SprintModel(
        "anthropic",
        judge_choice="anthropic",
        coder_verdicts=["VERIFICATION_FAILED: NameError in hello.py", "VERIFICATION_FAILED: wrong greeting"],
    )
    h = Harness(anthropic=coder)
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.COMPLETED
    assert phases(sprint) == [
        ("discovery", 1, "completed"),
        ("coding", 1, "failed"),
        ("coding", 2, "failed"),
        ("coding", 3, "completed"),
        ("verification", 3, "completed"),
    ]
    systems = [r.messages[0].content for r in coder.calls("code") if len(r.messages) == 2]
    assert "previous attempt failed" not in systems[0]
    assert "Attempt 2 of 3" in systems[1]
    assert "NameError in hello.py" in systems[1]
    assert "Attempt 3 of 3" in systems[2]
    assert "wrong greeting" in systems[2]


async def test_three_failed_coding_attempts_fail_the_sprint_with_the_last_reason() -> None:
    coder = SprintModel("anthropic", judge_choice="anthropic", coder_verdicts=["VERIFICATION_FAILED: no"] * 3)
    h = Harness(anthropic=coder)
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.FAILED
    assert sprint.failure_reason.startswith("coding failed 3 times; last failure: coding attempt 3")
    assert h.events()[-1] == "sprint.failed"
    assert all(a.status is PhaseAttemptStatus.FAILED for a in sprint.phases if a.phase is Phase.CODING)


async def test_a_failed_verification_sends_the_work_back_to_coding() -> None:
    model = SprintModel("anthropic", judge_choice="anthropic", verifier_verdicts=["VERIFICATION_FAILED: 1 failed"])
    h = Harness(anthropic=model)
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.COMPLETED
    assert phases(sprint)[1:] == [
        ("coding", 1, "completed"),
        ("verification", 1, "failed"),
        ("coding", 2, "completed"),
        ("verification", 2, "completed"),
    ]
    retry = [r for r in model.calls("code") if len(r.messages) == 2][1]
    assert "verification attempt 1" in retry.messages[0].content


async def test_tests_that_fail_in_the_sandbox_fail_verification_whatever_the_agent_says() -> None:
    h = Harness()
    # Coding runs the tests once (its tool call); then the sandbox run of verification 1 fails.
    h.workspaces.workspace.reports = [report(True), report(False)]
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    first = sprint.attempt(Phase.VERIFICATION, 1)
    assert first is not None
    assert first.status is PhaseAttemptStatus.FAILED
    # The agent's verdict in words, not its token.
    assert first.summary.startswith("tests: 1 failed; agent: success")
    assert "VERIFICATION_SUCCESS" not in first.summary
    assert sprint.status is SprintStatus.COMPLETED
    assert phases(sprint)[-1] == ("verification", 2, "completed")


async def test_a_planner_failure_still_plans_with_the_other_one() -> None:
    h = Harness(openai=SprintModel("openai", fail_on={"plan"}))
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.COMPLETED
    assert "candidate.failed" in h.events()


async def test_discovery_without_any_plan_fails_the_sprint() -> None:
    h = Harness(openai=SprintModel("openai", fail_on={"plan"}), anthropic=SprintModel("anthropic", fail_on={"plan"}))
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.FAILED
    assert sprint.failure_reason.startswith("discovery failed: every subagent failed")
    assert h.openai.calls("code") == h.anthropic.calls("code") == []


async def test_a_provider_without_a_key_fails_the_sprint_with_that_reason_not_an_internal_error() -> None:
    h = Harness()
    h.connect(h.openai, h.anthropic, configured=("anthropic",))
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.FAILED
    assert sprint.failure_reason == (
        "PROVIDER_NOT_CONFIGURED: provider 'openai' has no API key and no base URL configured"
    )
    assert h.openai.calls("plan") == h.anthropic.calls("plan") == []


async def test_the_verifier_may_not_write() -> None:
    class WritingVerifier(SprintModel):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            if self.kind(request) == "verify" and not any(m.role is Role.TOOL for m in request.messages):
                self.requests.append(request)
                call = ToolCall("x", "fs_write_file", {"path": "hello.py", "content": "cheat"})
                return replace(await super().complete(request), text="", tool_calls=(call,))
            return await super().complete(request)

    h = Harness(anthropic=WritingVerifier("anthropic", judge_choice="anthropic"))
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    assert h.workspaces.workspace.files["hello.py"] == "print('Hello, World!')\n"
    refused = [e.data for e in h.uow.state.events if isinstance(e.data, ToolCalled) and e.data.is_error]
    assert [r.tool for r in refused] == ["fs_write_file"]
    assert refused[0].result.startswith("error: TOOL_NOT_ALLOWED")


async def test_a_loop_that_never_answers_fails_its_attempt() -> None:
    class Chatty(SprintModel):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            self.requests.append(request)
            if self.kind(request) in ("plan", "judge"):
                self.requests.pop()
                return await super().complete(request)
            return replace(await super().complete(request), text="", tool_calls=(ToolCall("l", "fs_list_dir", {}),))

    h = Harness(anthropic=Chatty("anthropic", judge_choice="anthropic"))
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    coding = sprint.attempt(Phase.CODING, 1)
    assert coding is not None
    assert coding.status is PhaseAttemptStatus.FAILED
    assert coding.summary == f"coding attempt 1: no answer after {MAX_TOOL_STEPS} steps"
    assert sprint.status is SprintStatus.FAILED


async def test_no_commit_stores_a_phase_attempt_whose_agent_run_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A cancel may come between any two commits: none of them may leave an attempt naming a run
    # that does not exist (it would answer 404).
    commit = FakeUnitOfWork.commit

    async def checked(self: FakeUnitOfWork) -> None:
        await commit(self)
        missing = [a for a in self.state.attempts.values() if a.agent_run_id not in self.state.runs]
        assert missing == []

    monkeypatch.setattr(FakeUnitOfWork, "commit", checked)
    h = Harness()
    lease = await h.start()

    await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.COMPLETED
    assert len(sprint.phases) == 3


async def test_a_cancelled_sprint_is_not_continued_by_a_replica_that_claims_it() -> None:
    h = Harness()
    lease = await h.start()
    scheduler = Workers(h.deps.leases, lambda lease: PhaseRunner(h.deps, lease).run())

    await handlers.cancel_sprint(c.CancelSprint(lease.id, ""), h.uow, scheduler, h.deps.runner)
    h.lapse_leases()

    assert await h.leases.claim_stale(5) == []
    assert await h.run_leases.claim_stale(5) == []
    # A runner started with the lease from before the cancel stops before its first call.
    await PhaseRunner(h.deps, lease).run()
    assert h.openai.requests == h.anthropic.requests == []
    assert h.events()[-1] == "sprint.cancelled"


# ---------------------------------------------------------------- resume


class CrashingModel(SprintModel):
    """Dies at the ``at``-th request of ``kind`` (1-based), once."""

    def __init__(self, name: str, kind: str, at: int, **kwargs: object) -> None:
        super().__init__(name, **kwargs)  # type: ignore[arg-type]
        self.crash_kind, self.crash_at = kind, at

    async def complete(self, request):  # type: ignore[no-untyped-def]
        if self.kind(request) == self.crash_kind and len(self.calls(self.crash_kind)) + 1 == self.crash_at:
            self.requests.append(request)
            raise Crash
        return await super().complete(request)


async def crash_then_resume(h: Harness, lease: Lease) -> Lease:
    with pytest.raises(Crash):
        await PhaseRunner(h.deps, lease).run()
    h.lapse_leases()
    h.connect(SprintModel("openai"), SprintModel("anthropic", judge_choice="anthropic"), owner="p2")
    (claimed,) = await h.leases.claim_stale(5)
    assert claimed.token == lease.token + 1
    return claimed


@pytest.mark.parametrize(
    ("kind", "at", "asked_again"),
    [
        # Died asking for the first coding turn: discovery is not redone.
        ("code", 1, {"plan": 0, "judge": 0, "code": 3, "verify": 2}),
        # Died after two coding turns were stored: only the third turn is asked.
        ("code", 3, {"plan": 0, "judge": 0, "code": 1, "verify": 2}),
        # Died in verification: coding is not redone.
        ("verify", 2, {"plan": 0, "judge": 0, "code": 0, "verify": 1}),
    ],
)
async def test_a_sprint_taken_over_continues_from_what_is_stored(
    kind: str, at: int, asked_again: dict[str, int]
) -> None:
    h = Harness(anthropic=CrashingModel("anthropic", kind, at, judge_choice="anthropic"))
    lease = await h.start()

    claimed = await crash_then_resume(h, lease)
    await PhaseRunner(h.deps, claimed).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.COMPLETED, sprint.failure_reason
    assert {k: len(h.anthropic.calls(k)) for k in asked_again} == asked_again
    assert h.openai.requests == []
    assert phases(sprint) == [
        ("discovery", 1, "completed"),
        ("coding", 1, "completed"),
        ("verification", 1, "completed"),
    ]
    # Every phase's agent run is closed, with one candidate and its decision.
    for attempt in sprint.phases:
        run = h.uow.state.runs[attempt.agent_run_id].run
        assert run.status.value == "completed"
        assert attempt.agent_run_id in h.uow.state.decisions


async def test_a_sprint_whose_planning_run_was_cut_short_waits_for_the_run_to_be_continued() -> None:
    h = Harness(anthropic=CrashingModel("anthropic", "judge", 1, judge_choice="anthropic"))
    lease = await h.start()

    claimed = await crash_then_resume(h, lease)
    # The planning agent run is the AgentRunner's to continue; the sprint waits for it.
    runner = asyncio.create_task(PhaseRunner(h.deps, claimed).run())
    assert await h.deps.runner.resume_stale() == 1
    await asyncio.wait_for(runner, 10)

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.COMPLETED
    # Both plans were kept; only the judge was asked again.
    assert len(h.openai.calls("plan")) == 0
    assert len(h.anthropic.calls("plan")) == 0
    assert len(h.anthropic.calls("judge")) == 1


# ---------------------------------------------------------------- leases


async def test_a_runner_that_lost_its_lease_writes_nothing_more_but_keeps_the_calls_it_paid_for() -> None:
    h = Harness()
    lease = await h.start()

    class Thief(SprintModel):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            answer = await super().complete(request)
            if self.kind(request) == "code":
                # Another process claims the sprint while this call is in flight.
                h.uow.state.sprints[lease.id].lease_owner = "p2"
                h.uow.state.sprints[lease.id].lease_token += 1
            return answer

    h.connect(SprintModel("openai"), Thief("anthropic", judge_choice="anthropic"))
    with pytest.raises(LeaseLost):
        await PhaseRunner(h.deps, lease).run()

    sprint = await h.sprint(lease.id)
    assert sprint.status is SprintStatus.ACTIVE
    coding = sprint.attempt(Phase.CODING, 1)
    assert coding is not None
    # The turn was not stored for the runner that lost the lease …
    assert [m.role for m in coding.output.messages] == []
    # … but the model call it paid for was.
    code_calls = [c for c in h.uow.state.llm_calls if c.correlation.purpose == "sprint.coding"]
    assert [c.status for c in code_calls] == [LlmCallStatus.SUCCEEDED]
    assert h.events()[-1] == "phase.started"


async def test_cancel_revokes_the_lease_and_stops_the_local_runner() -> None:
    h = Harness()
    gate = asyncio.Event()

    class Slow(SprintModel):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            if self.kind(request) == "code":
                gate.set()
                await asyncio.sleep(30)
            return await super().complete(request)

    h.connect(SprintModel("openai"), Slow("anthropic", judge_choice="anthropic"))
    scheduler = Workers(h.deps.leases, lambda lease: PhaseRunner(h.deps, lease).run())
    sprint = await handlers.create_sprint(c.CreateSprint("hello sprint", "", SPEC), h.uow)
    await handlers.start_sprint(c.StartSprint(sprint.id, "click", "test"), h.uow, scheduler, h.deps.owner)
    await asyncio.wait_for(gate.wait(), 5)

    cancelled = await handlers.cancel_sprint(
        c.CancelSprint(sprint.id, "changed my mind"), h.uow, scheduler, h.deps.runner
    )
    await scheduler.close()
    await h.deps.llm.drain()

    assert cancelled.status is SprintStatus.CANCELLED
    assert cancelled.failure_reason == "cancelled: changed my mind"
    stored = h.uow.state.sprints[sprint.id]
    assert stored.lease_owner == ""
    assert h.events()[-2:] == ["phase.cancelled", "sprint.cancelled"]
    coding = cancelled.attempt(Phase.CODING, 1)
    assert coding is not None
    assert coding.status is PhaseAttemptStatus.CANCELLED
    assert h.uow.state.runs[coding.agent_run_id].run.status is AgentRunStatus.CANCELLED
    # The coding call in flight was cancelled with the phase, and is stored so (it may be billed).
    coding_calls = [c for c in h.uow.state.llm_calls if c.correlation.purpose == "sprint.coding"]
    assert [(c.provider, c.status, c.usd) for c in coding_calls] == [("anthropic", LlmCallStatus.CANCELLED, None)]


@pytest.mark.parametrize(
    ("answer", "outcome", "said"),
    [
        (
            "VERIFICATION_SUCCESS: hello.py prints 'hello world'",
            VerdictOutcome.SUCCESS,
            "hello.py prints 'hello world'",
        ),
        ("Ran the tests, 2 passed.\nVERIFICATION_SUCCESS", VerdictOutcome.SUCCESS, "Ran the tests, 2 passed."),
        ("VERIFICATION_SUCCESS", VerdictOutcome.SUCCESS, ""),
        ("VERIFICATION_FAILED - test_edge fails", VerdictOutcome.FAILURE, "test_edge fails"),
        # Both tokens: not a success.
        (
            "VERIFICATION_SUCCESS was premature: VERIFICATION_FAILED, test_edge fails",
            VerdictOutcome.FAILURE,
            "was premature; test_edge fails",
        ),
        ("I could not finish.", VerdictOutcome.NONE, "I could not finish."),
    ],
)
def test_an_agent_s_verdict_is_read_from_its_tokens_and_said_without_them(
    answer: str, outcome: VerdictOutcome, said: str
) -> None:
    verdict = Verdict.of(answer)

    assert (verdict.outcome, verdict.said) == (outcome, said)
    assert verdict.succeeded is (outcome is VerdictOutcome.SUCCESS)
    assert verdict.describe() == (f"{outcome}: {said}" if said else str(outcome))
