"""Stand-ins for the run service's neighbours: the spec service, the agent service's models, the snapshot service.

``FakeModels`` answers the pipeline's three tasks deterministically and keeps every answer under
its idempotency key, as the agent service does: a key already answered is replayed for free, so a
test can count what was paid for, and how often. It also keeps each run's answers (and failures)
by request, as the agent service's call log does, and answers a recorded replay from them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from crucible_run.domain.estimates import STRUCTURED_ATTEMPTS, UNPRICED, ModelPrice, Pricing
from crucible_run.domain.failure_snapshot import FailureSnapshot
from crucible_run.domain.lineage import ChatMessage
from crucible_run.domain.model import Constraint, JsonObject, LlmUsage, ProblemCopy
from crucible_run.service_layer.ports import (
    CallNotRecorded,
    ChatTarget,
    ModelAnswer,
    ModelCall,
    ModelCallFailed,
    ModelsUnavailable,
    ProjectProblem,
    SnapshotRefused,
    SummaryRefused,
)

PRICE = ModelPrice(0.15, 0.60)
# A designed candidate with this word in its title breaks every hard constraint.
RECKLESS = "Reckless"

PROBLEM = ProblemCopy(
    constraints=(Constraint("budget", "stay under budget", 100), Constraint("style", "look good", 40)),
    goals=("carry traffic across the river",),
    resolution="medium",
    world_model={"actors": [{"name": "commuters", "description": "people crossing"}]},
)


class Crash(BaseException):
    """The process dies here: nothing after it runs, nothing uncommitted is kept."""


def request_of(call: ModelCall) -> str:
    """What the agent service hashes: the model and what it is asked, never the key or the ids."""
    asked = [
        call.provider,
        call.model,
        call.system,
        call.prompt,
        call.schema_name,
        json.dumps(call.schema, sort_keys=True),
    ]
    return hashlib.sha256("|".join(asked).encode()).hexdigest()


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


@dataclass
class FakeModels:
    latency: float = 0.0
    # Evaluation calls whose candidate title contains one of these fail with no valid answer.
    failing_titles: tuple[str, ...] = ()
    # Raise Crash at the n-th paid evaluation call (1-based), once.
    crash_at_evaluation: int | None = None
    # At the n-th paid evaluation call (1-based), once: the answer is paid and kept under its key,
    # but the caller hears nothing back (its deadline passed) — ModelsUnavailable.
    unanswered_evaluation: int | None = None
    answers: dict[str, JsonObject] = field(default_factory=dict)
    paid: Counter[str] = field(default_factory=Counter)
    replayed: Counter[str] = field(default_factory=Counter)
    # Each run's answer (or failure) by request: what a recorded replay of the run is answered from.
    by_request: dict[tuple[str, str], JsonObject | ModelCallFailed] = field(default_factory=dict)
    spent: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    calls: list[ModelCall] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    # By run: what the calls a runner before left in flight cost, recorded only once they end.
    left_in_flight: dict[str, float] = field(default_factory=dict)
    # By call id: the raw answers of failed calls, whole (an error carries its first 500 characters;
    # a run keeps 4,000).
    whole_answers: dict[str, str] = field(default_factory=dict)
    # GetLlmCall unanswered: the service away.
    away_for_answers: bool = False
    # How many times the agent service says it asks a structured call at most.
    structured_attempts: int = STRUCTURED_ATTEMPTS
    # Models without a price: every call's cost is unknown (None, never $0).
    unpriced: bool = False

    def paid_for(self, purpose: str, run_id: str = "") -> int:
        return sum(n for key, n in self.paid.items() if f":{purpose}" in key and run_id in key)

    async def complete(self, call: ModelCall) -> ModelAnswer:
        self.calls.append(call)
        stored = self.answers.get(call.idempotency_key)
        if stored is not None:
            return ModelAnswer(stored, f"call-{call.idempotency_key}", 0, 0.0, replayed=True)
        if call.replay_of_run_id:
            return self._replay(call)
        crash = self.crash_at_evaluation
        if call.schema_name == "evaluation" and crash is not None and self.paid_for("evaluation") + 1 == crash:
            self.crash_at_evaluation = None
            raise Crash
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            answer = self._answer(call)
        except ModelCallFailed as failed:
            self.by_request[(call.run_id, request_of(call))] = failed
            raise
        finally:
            self.in_flight -= 1
        self.paid[call.idempotency_key] += 1
        self.answers[call.idempotency_key] = answer
        self.by_request[(call.run_id, request_of(call))] = answer
        # Priced like a real model: by the prompt's and the answer's tokens.
        tokens_in, tokens_out = len(call.system + call.prompt) // 4, len(str(answer)) // 4
        usd = 0.0 if self.unpriced else PRICE.cost(tokens_in, tokens_out) or 0.0
        self.spent[call.idempotency_key] = (tokens_in, tokens_out, usd)
        if call.schema_name == "evaluation" and self.paid_for("evaluation") == self.unanswered_evaluation:
            self.unanswered_evaluation = None
            raise ModelsUnavailable("the agent service did not answer the evaluation call (DEADLINE_EXCEEDED: test)")
        return ModelAnswer(
            answer,
            f"call-{call.idempotency_key}",
            tokens_in + tokens_out,
            None if self.unpriced else usd,
            replayed=False,
        )

    def _replay(self, call: ModelCall) -> ModelAnswer:
        """As the agent service answers a ``run:<id>`` recording: the run's answer or failure, at $0."""
        request = request_of(call)
        recorded = self.by_request.get((call.replay_of_run_id, request))
        if recorded is None:
            raise CallNotRecorded("REPLAY_MISS", f"run {call.replay_of_run_id} made no such call", request_hash=request)
        # Kept for the replaying run too: a replay can itself be replayed.
        self.by_request[(call.run_id, request)] = recorded
        if isinstance(recorded, ModelCallFailed):
            raise recorded
        self.replayed[call.idempotency_key] += 1
        self.answers[call.idempotency_key] = recorded
        tokens_in, tokens_out = len(call.system + call.prompt) // 4, len(str(recorded)) // 4
        self.spent[call.idempotency_key] = (tokens_in, tokens_out, 0.0)
        return ModelAnswer(recorded, f"call-{call.idempotency_key}", tokens_in + tokens_out, 0.0, replayed=False)

    def _answer(self, call: ModelCall) -> JsonObject:
        if call.schema_name == "design_candidates":
            count = int(call.prompt.rsplit("num_candidates:", 1)[1])
            titles = [f"Design {i}" for i in range(count)]
            if count > 1:
                titles[-1] = f"{RECKLESS} design"
            return {
                "candidates": [
                    {"title": t, "description": f"{t} does it", "approach": "an approach", "assumptions": ["a"]}
                    for t in titles
                ]
            }
        if call.schema_name == "scenarios":
            count = int(call.prompt.rsplit("num_scenarios:", 1)[1])
            return {
                "scenarios": [
                    {"title": f"Scenario {i}", "description": "when", "conditions": ["c"], "severity": "medium"}
                    for i in range(count)
                ]
            }
        assert call.schema_name == "evaluation", call.schema_name
        if any(t in call.prompt for t in self.failing_titles):
            # Three attempts, each paid, none valid: as the agent service says in its error.
            tokens_in, tokens_out = 3 * len(call.system + call.prompt) // 4, 3 * 2
            usd = 0.0 if self.unpriced else PRICE.cost(tokens_in, tokens_out) or 0.0
            self.spent[call.idempotency_key] = (tokens_in, tokens_out, usd)
            raw, call_id = '{"oops": "' + "x" * 5_000, str(uuid.uuid5(uuid.NAMESPACE_URL, call.idempotency_key))
            self.whole_answers[call_id] = raw
            raise ModelCallFailed(
                "STRUCTURED_OUTPUT_INVALID",
                "no valid evaluation in 3 attempts",
                raw_answer=raw[:500],
                llm_call_id=call_id,
                tokens=tokens_in + tokens_out,
                usd=usd,
            )
        reckless = RECKLESS in call.prompt
        p, r = 0.4 + 0.5 * _unit("p", call.prompt), 0.3 + 0.5 * _unit("r", call.prompt)
        return {
            "P": {"overall": round(p, 3), "components": {"effectiveness": round(p, 3)}},
            "R": {"overall": round(r, 3), "components": {"cost": round(r, 3)}},
            "constraint_satisfaction": [
                {"constraint": "budget", "satisfied": not reckless, "score": 0.2 if reckless else 0.9, "note": ""},
                {"constraint": "style", "satisfied": True, "score": 0.8, "note": ""},
            ],
            "explanation": "fine",
        }

    async def prices(self, models: Sequence[tuple[str, str]]) -> Pricing:
        return Pricing(tuple(UNPRICED if self.unpriced else PRICE for _ in models), self.structured_attempts)

    async def answer_text(self, llm_call_id: str) -> str | None:
        return None if self.away_for_answers else self.whole_answers.get(llm_call_id)

    async def settled_usage(self, run_id: str) -> LlmUsage:
        usage = await self.usage(run_id)
        # The calls a runner before left in flight have ended (and are recorded) by now.
        return replace(usage, usd=usage.usd + self.left_in_flight.get(run_id, 0.0))

    async def usage(self, run_id: str) -> LlmUsage:
        mine = [(self.paid[k] + self.replayed[k], *v) for k, v in self.spent.items() if k.startswith(f"run:{run_id}:")]
        return LlmUsage(
            input_tokens=sum(n * i for n, i, _, _ in mine),
            output_tokens=sum(n * o for n, _, o, _ in mine),
            usd=sum(n * u for n, _, _, u in mine),
            calls=sum(n for n, _, _, _ in mine),
        )


@dataclass
class Posted:
    target: ChatTarget
    message_id: str
    content: str
    metadata: JsonObject

    @property
    def summary(self) -> JsonObject:
        summary = self.metadata["run_summary"]
        assert isinstance(summary, dict)
        return summary


@dataclass
class FakeSpec:
    problems: dict[str, ProjectProblem] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    messages: dict[str, ChatMessage] = field(default_factory=dict)
    posted: list[Posted] = field(default_factory=list)
    # Projects with auto_snapshot_failed_runs on.
    snapshotting: set[str] = field(default_factory=set)
    setting_reads: int = 0
    message_reads: int = 0
    down: bool = False
    # Answers every summary with a refusal (as INVALID_ARGUMENT would be), counting them.
    refusing_summaries: bool = False
    summaries_refused: int = 0

    def project(self, problem: ProblemCopy | None = PROBLEM) -> str:
        project_id = str(uuid.uuid4())
        self.problems[project_id] = ProjectProblem(problem, problem is not None, problem is not None)
        return project_id

    def session(self, project_id: str) -> str:
        session_id = str(uuid.uuid4())
        self.sessions[session_id] = project_id
        return session_id

    def recommend(
        self, project_id: str, session_id: str, config: JsonObject | None = None, *, agent: bool = True
    ) -> str:
        message_id = str(uuid.uuid4())
        config = config if config is not None else {"mode": "full_search"}
        self.messages[message_id] = ChatMessage(
            message_id,
            project_id,
            session_id,
            agent,
            "Run a full search",
            {"recommended_run_config": config},
            datetime.now(UTC),
        )
        return message_id

    async def project_exists(self, project_id: str) -> bool:
        return project_id in self.problems

    async def problem(self, project_id: str) -> ProjectProblem:
        # As the spec service's client: a project it does not know has no problem (see the port).
        return self.problems.get(project_id, ProjectProblem(None, has_problem_spec=False, has_world_model=False))

    async def chat_message(self, message_id: str) -> ChatMessage | None:
        self.message_reads += 1
        return self.messages.get(message_id)

    async def auto_snapshot_failed_runs(self, project_id: str) -> bool:
        if self.down:
            raise ConnectionError("the spec service is unavailable")
        self.setting_reads += 1
        return project_id in self.snapshotting

    async def chat_session_project(self, chat_session_id: str) -> str | None:
        return self.sessions.get(chat_session_id)

    async def post_summary(self, target: ChatTarget, message_id: str, content: str, metadata: JsonObject) -> str:
        if self.down:
            raise ConnectionError("the spec service is unavailable")
        if self.refusing_summaries:
            self.summaries_refused += 1
            raise SummaryRefused("INVALID_ARGUMENT: the message is not valid")
        if all(p.message_id != message_id for p in self.posted):
            self.posted.append(Posted(target, message_id, content, metadata))
            self.messages[message_id] = ChatMessage(
                message_id,
                target.project_id,
                target.chat_session_id,
                True,
                content,
                metadata,
                datetime.now(UTC),
            )
        return message_id


@dataclass
class FakeSnapshots:
    """The snapshot service's CreateSnapshot: names are unique, as there (a name taken is done)."""

    made: list[FailureSnapshot] = field(default_factory=list)
    asked: int = 0
    down: bool = False
    refuse: str = ""

    async def create(self, snapshot: FailureSnapshot) -> None:
        self.asked += 1
        if self.down:
            raise ConnectionError("the snapshot service is unavailable")
        if self.refuse:
            raise SnapshotRefused(self.refuse)
        if all(m.name != snapshot.name for m in self.made):
            self.made.append(snapshot)
