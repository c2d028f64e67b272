"""The pipeline's prompts carry what a model judges, never an id or a time: a replay asks the same.

The agent service hashes a request (provider, model, messages, schema) to find its recorded
answer; a run id, a candidate's or a scenario's uuid or a timestamp in a prompt would make every
run's requests new, and no run replayable.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from crucible_run.domain import estimates as est
from crucible_run.domain.model import Candidate, CandidateDraft, CandidateOrigin, Constraint, ProblemCopy, Scenario
from crucible_run.service_layer import prompts

PROBLEM = ProblemCopy(
    (Constraint("budget", "stay under budget", 100),),
    ("carry traffic",),
    "medium",
    {"actors": [{"name": "commuters"}]},
)
CANDIDATE = Candidate(
    "aaaaaaaa-0000-4000-8000-000000000001",
    "run-a",
    "Suspension",
    "A suspension bridge",
    "cables",
    ("steel",),
    CandidateOrigin.DESIGNED,
    datetime(2026, 1, 1, tzinfo=UTC),
)
SCENARIO = Scenario(
    "bbbbbbbb-0000-4000-8000-000000000001",
    "run-a",
    "Storm",
    "high wind",
    ("wind 120 km/h",),
    "high",
    datetime(2026, 1, 1, tzinfo=UTC),
)


def test_an_evaluation_prompt_is_the_same_for_the_same_content_in_another_run() -> None:
    later = datetime(2027, 6, 1, tzinfo=UTC)
    other_candidate = replace(CANDIDATE, id="aaaaaaaa-0000-4000-8000-000000000002", run_id="run-b", created_at=later)
    other_scenario = replace(SCENARIO, id="bbbbbbbb-0000-4000-8000-000000000002", run_id="run-b", created_at=later)

    first = prompts.evaluation_prompt(PROBLEM, CANDIDATE, SCENARIO)
    again = prompts.evaluation_prompt(PROBLEM, other_candidate, other_scenario)

    assert first == again
    for varying in (CANDIDATE.id, SCENARIO.id, CANDIDATE.run_id, "2026"):
        assert varying not in first


def test_design_and_scenario_prompts_depend_on_the_problem_and_the_count_only() -> None:
    assert prompts.design_prompt(PROBLEM, 3) == prompts.design_prompt(replace(PROBLEM), 3)
    assert prompts.design_prompt(PROBLEM, 3) != prompts.design_prompt(PROBLEM, 4)
    assert prompts.scenarios_prompt(PROBLEM, 2) != prompts.scenarios_prompt(PROBLEM, 3)
    assert prompts.design_schema(3) == prompts.design_schema(3)


def test_preflight_sizes_are_what_the_design_and_scenario_calls_read() -> None:
    sizes = prompts.sizes(PROBLEM, 3, 2)

    assert sizes.design == est.call_chars(
        prompts.DESIGNER_SYSTEM, prompts.design_prompt(PROBLEM, 3), prompts.design_schema(3)
    )
    assert sizes.scenarios == est.call_chars(
        prompts.SCENARIO_SYSTEM, prompts.scenarios_prompt(PROBLEM, 2), prompts.scenarios_schema(2)
    )


def test_preflight_sizes_leave_only_the_pair_out_of_an_evaluation() -> None:
    read = est.call_chars(
        prompts.EVALUATOR_SYSTEM, prompts.evaluation_prompt(PROBLEM, CANDIDATE, SCENARIO), prompts.EVALUATION_SCHEMA
    )
    texts = [SCENARIO.title, SCENARIO.description, *SCENARIO.conditions, SCENARIO.severity]

    left_out = read - prompts.sizes(PROBLEM, 3, 2).evaluation - prompts.candidate_chars(CANDIDATE)
    # The scenario's texts, and the quotes and indentation of its list's item.
    assert sum(map(len, texts)) <= left_out <= sum(map(len, texts)) + 10


def test_a_written_candidate_is_sized_as_the_evaluation_prompt_holds_it() -> None:
    blank = replace(CANDIDATE, title="", description="", approach="", assumptions=())
    holds = len(prompts.evaluation_prompt(PROBLEM, CANDIDATE, SCENARIO)) - len(
        prompts.evaluation_prompt(PROBLEM, blank, SCENARIO)
    )

    assert prompts.candidate_chars(CANDIDATE) == holds
    draft = CandidateDraft(CANDIDATE.title, CANDIDATE.description, CANDIDATE.approach, CANDIDATE.assumptions)
    assert prompts.candidate_chars(draft) == holds
