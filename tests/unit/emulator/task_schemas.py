"""Schemas a caller could send for each well-known task, in OpenAI strict style (all required, no extras)."""

from __future__ import annotations

from typing import Any

JsonSchema = dict[str, Any]


def obj(properties: dict[str, Any], required: list[str] | None = None) -> JsonSchema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


STRING: JsonSchema = {"type": "string"}
UNIT: JsonSchema = {"type": "number", "minimum": 0, "maximum": 1}
NAMED_ITEMS: JsonSchema = {"type": "array", "items": obj({"name": STRING, "description": STRING})}
NUMBER_MAP: JsonSchema = {"type": "object", "additionalProperties": {"type": "number"}}

PLANNING_QUESTIONS = obj(
    {
        "questions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 5,
            "items": obj({"question": STRING, "rationale": STRING}),
        }
    }
)

JUDGE_DECISION = obj({"choice": {"type": "string", "enum": ["openai", "anthropic"]}, "rationale": STRING})

_CONSTRAINT = obj({"name": STRING, "description": STRING, "weight": {"type": "integer", "minimum": 0, "maximum": 100}})
_GOAL = obj({"description": STRING})
_RESOLUTION = {"type": "string", "enum": ["coarse", "medium", "fine"]}
_MODE = {"type": "string", "enum": ["full_search", "eval_only", "seeded"]}
_MODEL_DATA = obj(
    {
        section: NAMED_ITEMS
        for section in ("actors", "mechanisms", "resources", "constraints", "assumptions", "simplifications")
    }
)

PROBLEM_SPEC_REFINEMENT = obj(
    {
        "constraints": {"type": "array", "items": _CONSTRAINT},
        "goals": {"type": "array", "minItems": 1, "items": _GOAL},
        "resolution": _RESOLUTION,
        "mode": _MODE,
        "rationale": STRING,
    }
)

WORLD_MODEL_REFINEMENT = obj({"model_data": _MODEL_DATA, "rationale": STRING})

ARCHITECT_REPLY = {
    "type": "object",
    "$defs": {
        "spec_patch": obj(
            {
                "constraints": {"type": "array", "items": _CONSTRAINT},
                "goals": {"type": "array", "items": _GOAL},
                "resolution": _RESOLUTION,
                "mode": _MODE,
            }
        ),
        "run_config": obj(
            {
                "status": {"type": "string", "enum": ["ready", "blocked"]},
                "blockers": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["missing_problem_spec", "missing_world_model"]},
                },
                "mode": _MODE,
                "parameters": obj(
                    {
                        "num_candidates": {"type": "integer", "minimum": 1},
                        "num_scenarios": {"type": "integer", "minimum": 1},
                    }
                ),
                "estimated_cost_usd": {"type": "number", "minimum": 0},
                "rationale": STRING,
                "expires_in_seconds": {"type": "integer", "minimum": 1},
            }
        ),
    },
    "properties": {
        "reply": STRING,
        "intent": {"type": "string", "enum": ["refine", "run_request", "question"]},
        "problem_spec_patch": {"anyOf": [{"$ref": "#/$defs/spec_patch"}, {"type": "null"}]},
        "world_model_patch": {"anyOf": [obj({"model_data": _MODEL_DATA}), {"type": "null"}]},
        "recommended_run_config": {"anyOf": [{"$ref": "#/$defs/run_config"}, {"type": "null"}]},
    },
    "required": ["reply", "intent", "problem_spec_patch", "world_model_patch", "recommended_run_config"],
    "additionalProperties": False,
}

DESIGN_CANDIDATES = obj(
    {
        "candidates": {
            "type": "array",
            "items": obj(
                {
                    "title": STRING,
                    "description": STRING,
                    "approach": STRING,
                    "assumptions": {"type": "array", "items": STRING},
                }
            ),
        }
    }
)

SCENARIOS = obj(
    {
        "scenarios": {
            "type": "array",
            "items": obj(
                {
                    "title": STRING,
                    "description": STRING,
                    "conditions": {"type": "array", "items": STRING},
                    "severity": {"type": "string", "enum": ["low", "medium", "high"]},
                }
            ),
        }
    }
)

EVALUATION = obj(
    {
        "P": obj({"overall": UNIT, "components": NUMBER_MAP}),
        "R": obj({"overall": {"type": "number", "exclusiveMinimum": 0}, "components": NUMBER_MAP}),
        "constraint_satisfaction": {
            "type": "array",
            "items": obj({"constraint": STRING, "satisfied": {"type": "boolean"}, "score": UNIT, "note": STRING}),
        },
        "explanation": STRING,
    }
)

SPRINT_PLAN = obj(
    {
        "summary": STRING,
        "steps": {"type": "array", "items": STRING},
        "files": {"type": "array", "items": STRING},
        "tests": {"type": "array", "items": STRING},
        "plan_markdown": STRING,
    }
)

BY_TASK: dict[str, JsonSchema] = {
    "planning_questions": PLANNING_QUESTIONS,
    "judge_decision": JUDGE_DECISION,
    "architect_reply": ARCHITECT_REPLY,
    "problem_spec_refinement": PROBLEM_SPEC_REFINEMENT,
    "world_model_refinement": WORLD_MODEL_REFINEMENT,
    "design_candidates": DESIGN_CANDIDATES,
    "scenarios": SCENARIOS,
    "evaluation": EVALUATION,
    "sprint_plan": SPRINT_PLAN,
}
