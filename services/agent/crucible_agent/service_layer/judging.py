"""How a multi-agent run chooses: a judge model picks one candidate, or the fallback rule does."""

from __future__ import annotations

import json

from crucible_agent.domain.model import Candidate, ChatMessage, Decision, JsonObject, JudgeConfig, LlmRequest, Role
from crucible_agent.service_layer.llm import LlmOutcome

JUDGE_SCHEMA_NAME = "judge_decision"
JUDGE_SYSTEM = (
    "You are the judge of a multi-agent run: several subagents answered the same task. "
    "Choose the single best answer for the task and explain your choice in two or three sentences."
)


def judge_request(task: str, judge: JudgeConfig, candidates: list[Candidate]) -> LlmRequest:
    """Ask ``judge`` to choose among ``candidates`` by name, with a rationale."""
    schema: JsonObject = {
        "type": "object",
        "properties": {
            "choice": {
                "type": "string",
                "enum": [x.name for x in candidates],
                "description": "name of the best candidate",
            },
            "rationale": {"type": "string", "minLength": 1, "description": "why it is the best"},
        },
        "required": ["choice", "rationale"],
        "additionalProperties": False,
    }
    listing = json.dumps({"candidates": [{"name": x.name, "output": x.output} for x in candidates]}, indent=1)
    system = JUDGE_SYSTEM + (f"\n\n{judge.instructions}" if judge.instructions else "")
    return LlmRequest(
        judge.provider,
        judge.model,
        (ChatMessage(Role.SYSTEM, system), ChatMessage(Role.USER, f"Task:\n{task}\n\nCandidates:\n{listing}")),
        json_schema=schema,
        schema_name=JUDGE_SCHEMA_NAME,
    )


def decide(run_id: str, judge: JudgeConfig | None, candidates: list[Candidate], outcome: LlmOutcome | None) -> Decision:
    """The judge's choice when it gave a valid one; otherwise the fallback rule, with the reason it applies.

    ``candidates`` are in subagent order (never completion order), so the fallback does not depend
    on timing.
    """
    if len(candidates) == 1:
        return fallback(run_id, candidates[0], "single_candidate")
    if judge is None or outcome is None:
        return fallback(run_id, candidates[0], "no_judge_configured")
    if outcome.result is None or outcome.result.structured is None:
        assert outcome.error is not None
        return fallback(run_id, candidates[0], f"judge_failed: {outcome.error.reason}: {outcome.error.message}"[:500])
    answer = outcome.result.structured
    chosen = next(x for x in candidates if x.name == answer["choice"])
    return Decision(
        run_id,
        chosen.id,
        chosen.name,
        judge.provider,
        judge.model,
        str(answer["rationale"]),
        fallback=False,
        fallback_reason="",
    )


def fallback(run_id: str, candidate: Candidate, reason: str) -> Decision:
    """The rule, stated once: the first successful candidate in subagent order."""
    return Decision(
        run_id,
        candidate.id,
        candidate.name,
        provider="",
        model="",
        rationale=f"fallback rule: the first successful candidate in subagent order ({candidate.name})",
        fallback=True,
        fallback_reason=reason,
    )
