"""The well-known structured tasks of the offline model: the contract callers follow.

A structured request names its task by its schema name: the OpenAI ``response_format.json_schema.name``,
or the forced tool's name (Anthropic ``tool_choice {"type": "tool", "name": X}``, OpenAI
``tool_choice {"type": "function", "function": {"name": X}}``). Names are compared in snake case, so
``PlanningQuestions`` and ``planning_questions`` are the same task. Each task builds an answer from the
prompt, which is then fitted to the schema actually sent (missing required parts generated, extra parts
dropped, bounds applied) and validated; an unknown name gets a generic schema-valid instance.

"The task text" below is the latest user message with any embedded JSON object removed. "A JSON object
with key K" is the first JSON object having K, at any depth, found in the messages (latest first) or
the system text. ``key: N`` directives are lines such as ``max_questions: 5``.

``planning_questions``
    Prompt: the task to clarify in the last user message; optional ``max_questions: N``.
    Output: ``{"questions": [{"question", "rationale"}]}`` about output format, inputs and edge cases,
    success criteria, environment, scope, errors, layout, usage, performance, documentation; each
    question quotes the task. Count: ``max_questions`` clamped to the schema's ``minItems``/``maxItems``,
    else ``maxItems``, else 3.
``judge_decision``
    Prompt: a JSON object ``{"candidates": [{"name", "output"}, ...]}`` (``output`` text or JSON), the
    task in the surrounding text or a ``"task"`` key. Output: ``{"choice": <candidate name>, "rationale"}``;
    the choice stays within an ``enum`` on ``choice`` if the schema has one. Highest score wins: coverage
    of the task's key terms, number of distinct questions, a length within bounds; ties go to the first.
``architect_reply``
    Prompt: the user's message, and a JSON object with keys ``problem_spec`` and ``world_model`` (either
    may be null). Output: ``{"reply", "intent": "refine"|"run_request"|"question", "problem_spec_patch",
    "world_model_patch", "recommended_run_config"}``. A wish to run ("run it", "execute", "go ahead",
    "start the pipeline", "let's try it", ...) gives ``run_request`` and ``recommended_run_config =
    {"status": "ready"|"blocked", "blockers": ["missing_problem_spec", "missing_world_model"], "mode",
    "parameters": {"num_candidates", "num_scenarios"}, "estimated_cost_usd", "rationale",
    "expires_in_seconds"}``; the reply states the plan and what blocks it, but no price and no word on
    how to start it (the asking service adds both from preflight). Otherwise the patches
    are what the message states (shapes of the two refinement tasks; ``world_model_patch`` is
    ``{"model_data": {...}}``) or null, and the intent is ``refine``, or ``question`` when nothing
    changes and the message asks something.
``problem_spec_refinement``
    Prompt: the user's description; optionally a ``problem_spec`` JSON object to merge into. Output:
    ``{"constraints": [{"name", "description", "weight"}], "goals": [{"description"}], "resolution":
    "coarse"|"medium"|"fine", "mode": "full_search"|"eval_only"|"seeded", "rationale"}``. Sentences with
    must / cannot / never / required are hard constraints (weight 100); should 70, prefer 60,
    ideally / if possible 50; want / maximize / minimize / goal / aim give goals; at least one goal.
``world_model_refinement``
    Prompt: the user's description; optionally a ``world_model`` JSON object to merge into. Output:
    ``{"model_data": {"actors", "mechanisms", "resources", "constraints", "assumptions",
    "simplifications"}, "rationale"}``, every item ``{"name", "description"}``, every section non-empty.
``design_candidates``
    Prompt: the problem (text and/or a ``problem_spec`` JSON object); optional ``num_candidates: N``.
    Output: ``{"candidates": [{"title", "description", "approach", "assumptions": [str]}]}``, distinct.
``scenarios``
    Prompt: as for candidates; optional ``num_scenarios: N``. Output: ``{"scenarios": [{"title",
    "description", "conditions": [str], "severity": "low"|"medium"|"high"}]}``.
``evaluation``
    Prompt: JSON objects with ``"candidate"`` and ``"scenario"`` (text or objects with title /
    description), and a ``"constraints"`` list of ``{"name", "weight"}`` (or names). Output: ``{"P":
    {"overall": 0..1, "components": {...}}, "R": {"overall": >0, "components": {...}},
    "constraint_satisfaction": [{"constraint", "satisfied", "score", "note"}], "explanation"}``. Scores
    are a function of the candidate and scenario text; about one candidate in nine violates a given
    hard constraint (weight >= 100) in every scenario, and soft constraints fail now and then.
``sprint_plan``
    Prompt: the coding task (see ``coding_agent``). Output: ``{"summary", "steps": [str], "files": [str],
    "tests": [str], "plan_markdown"}``.

The tasks live by family: ``interview`` (planning_questions, judge_decision), ``refinement``
(problem_spec_refinement, world_model_refinement), ``architect`` (architect_reply), ``pipeline``
(design_candidates, scenarios, evaluation) and ``coding`` (sprint_plan), on the shared ``context``.
"""

from __future__ import annotations

from crucible_emulator.tasks.architect import architect_reply, wants_to_run
from crucible_emulator.tasks.coding import sprint_plan
from crucible_emulator.tasks.context import TaskContext, TaskFn
from crucible_emulator.tasks.interview import judge_decision, planning_questions
from crucible_emulator.tasks.pipeline import design_candidates, evaluation, scenarios
from crucible_emulator.tasks.refinement import problem_spec_refinement, world_model_refinement

__all__ = ["TASKS", "TaskContext", "TaskFn", "wants_to_run"]

TASKS: dict[str, TaskFn] = {
    "planning_questions": planning_questions,
    "judge_decision": judge_decision,
    "architect_reply": architect_reply,
    "problem_spec_refinement": problem_spec_refinement,
    "world_model_refinement": world_model_refinement,
    "design_candidates": design_candidates,
    "scenarios": scenarios,
    "evaluation": evaluation,
    "sprint_plan": sprint_plan,
}
