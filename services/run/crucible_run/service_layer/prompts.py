"""What the pipeline's models are asked, and the shape their answers must have.

Each answer is structured (the agent service validates it against the schema and asks again when
it does not fit); the problem, a candidate and a scenario travel as JSON objects in the prompt,
and the counts as ``key: N`` lines, where models (and the offline emulator) look for them.
"""

from __future__ import annotations

import functools
import json

from crucible_run.domain import estimates as est
from crucible_run.domain.model import Candidate, CandidateDraft, JsonObject, ProblemCopy, Scenario

DESIGN_SCHEMA_NAME = "design_candidates"
SCENARIOS_SCHEMA_NAME = "scenarios"
EVALUATION_SCHEMA_NAME = "evaluation"

_TEXT = {"type": "string", "minLength": 1}
_TEXTS = {"type": "array", "items": {"type": "string"}}
_SCORES = {"type": "object", "additionalProperties": {"type": "number"}}

DESIGNER_SYSTEM = (
    "You are a designer in a structured search for solutions. Propose distinct candidate designs for the "
    "problem: each with a short title, a description, its approach and the assumptions it rests on. They must "
    "respect every hard constraint (weight 100) and should serve the goals."
)
SCENARIO_SYSTEM = (
    "You write the scenarios candidate designs are tested against: distinct, concrete situations, from normal "
    "operation to severe stress, each with its conditions and a severity (low, medium or high)."
)
EVALUATOR_SYSTEM = (
    "You evaluate one candidate design in one scenario. Score P, how well it performs there (0 to 1), and R, "
    "what it costs or risks there (above 0; 1 is a heavy burden), each overall and by component. For every "
    "constraint say whether the candidate satisfies it in this scenario, with a score from 0 to 1 and a note. "
    "Explain your judgement in two or three sentences."
)


def design_schema(count: int) -> JsonObject:
    return {
        "type": "object",
        "properties": {
            "candidates": {
                "type": "array",
                "minItems": count,
                "maxItems": count,
                "items": {
                    "type": "object",
                    "properties": {"title": _TEXT, "description": _TEXT, "approach": _TEXT, "assumptions": _TEXTS},
                    "required": ["title", "description", "approach", "assumptions"],
                },
            }
        },
        "required": ["candidates"],
    }


def scenarios_schema(count: int) -> JsonObject:
    return {
        "type": "object",
        "properties": {
            "scenarios": {
                "type": "array",
                "minItems": count,
                "maxItems": count,
                "items": {
                    "type": "object",
                    "properties": {
                        "title": _TEXT,
                        "description": _TEXT,
                        "conditions": _TEXTS,
                        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
                    },
                    "required": ["title", "description", "conditions", "severity"],
                },
            }
        },
        "required": ["scenarios"],
    }


EVALUATION_SCHEMA: JsonObject = {
    "type": "object",
    "properties": {
        "P": {
            "type": "object",
            "properties": {"overall": {"type": "number", "minimum": 0, "maximum": 1}, "components": _SCORES},
            "required": ["overall", "components"],
        },
        "R": {
            "type": "object",
            "properties": {"overall": {"type": "number", "exclusiveMinimum": 0}, "components": _SCORES},
            "required": ["overall", "components"],
        },
        "constraint_satisfaction": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "constraint": _TEXT,
                    "satisfied": {"type": "boolean"},
                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                    "note": {"type": "string"},
                },
                "required": ["constraint", "satisfied", "score", "note"],
            },
        },
        "explanation": _TEXT,
    },
    "required": ["P", "R", "constraint_satisfaction", "explanation"],
}


def problem_json(problem: ProblemCopy) -> JsonObject:
    return {
        "problem_spec": {
            "constraints": [
                {"name": c.name, "description": c.description, "weight": c.weight} for c in problem.constraints
            ],
            "goals": [{"description": g} for g in problem.goals],
            "resolution": problem.resolution,
        },
        "world_model": problem.world_model,
    }


def design_prompt(problem: ProblemCopy, count: int) -> str:
    return (
        "Propose candidate designs for this problem.\n\n"
        f"{json.dumps(problem_json(problem), indent=1)}\n\nnum_candidates: {count}"
    )


def scenarios_prompt(problem: ProblemCopy, count: int) -> str:
    return (
        "Write the scenarios to test designs for this problem against.\n\n"
        f"{json.dumps(problem_json(problem), indent=1)}\n\nnum_scenarios: {count}"
    )


def evaluation_prompt(problem: ProblemCopy, candidate: Candidate, scenario: Scenario) -> str:
    return _evaluation_prompt(
        problem,
        _candidate_json(candidate),
        {
            "title": scenario.title,
            "description": scenario.description,
            "conditions": list(scenario.conditions),
            "severity": scenario.severity,
        },
    )


def _candidate_json(candidate: Candidate | CandidateDraft) -> JsonObject:
    return {
        "title": candidate.title,
        "description": candidate.description,
        "approach": candidate.approach,
        "assumptions": list(candidate.assumptions),
    }


def _evaluation_prompt(problem: ProblemCopy, candidate: JsonObject, scenario: JsonObject) -> str:
    context = {
        "goals": list(problem.goals),
        "constraints": [
            {"name": c.name, "description": c.description, "weight": c.weight} for c in problem.constraints
        ],
        "candidate": candidate,
        "scenario": scenario,
    }
    return f"Evaluate the candidate in the scenario.\n\n{json.dumps(context, indent=1)}"


_EMPTY_SCENARIO: JsonObject = {"title": "", "description": "", "conditions": [], "severity": ""}
# A project with no ProblemSpec yet (preflight sizes what its calls read besides one).
NO_PROBLEM = ProblemCopy((), (), "medium", {})


def sizes(problem: ProblemCopy, candidates: int, scenarios: int) -> est.PromptSizes:
    """What each call of a run on ``problem`` reads, as preflight estimates it; an evaluation's
    without its candidate and scenario (see ``candidate_chars``, ``estimates.SCENARIO_CHARS``)."""
    return est.PromptSizes(
        design=est.call_chars(DESIGNER_SYSTEM, design_prompt(problem, candidates), design_schema(candidates)),
        scenarios=est.call_chars(SCENARIO_SYSTEM, scenarios_prompt(problem, scenarios), scenarios_schema(scenarios)),
        evaluation=est.call_chars(
            EVALUATOR_SYSTEM,
            _evaluation_prompt(problem, _candidate_json(CandidateDraft("")), _EMPTY_SCENARIO),
            EVALUATION_SCHEMA,
        ),
    )


def candidate_chars(candidate: Candidate | CandidateDraft) -> int:
    """What a written candidate (a seed) adds to an evaluation's prompt."""
    written = _evaluation_prompt(NO_PROBLEM, _candidate_json(candidate), _EMPTY_SCENARIO)
    return len(written) - _empty_evaluation_chars()


@functools.cache
def _empty_evaluation_chars() -> int:
    return len(_evaluation_prompt(NO_PROBLEM, _candidate_json(CandidateDraft("")), _EMPTY_SCENARIO))
