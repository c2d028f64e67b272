"""The well-known tasks: schema-valid, input-dependent, and doing what their contract says."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from crucible_emulator.config import Provider
from crucible_emulator.conversation import Message
from crucible_emulator.offline_model import answer
from crucible_emulator.tasks import TASKS, wants_to_run
from tests.unit.emulator import task_schemas
from tests.unit.emulator.builders import structured

HELLO_TASK = "Write a Python script that prints 'hello world' to stdout."
DELIVERY_TEXT = (
    "The delivery vans must never exceed 8 hours per shift. We want to minimize fuel cost. Drivers should get a "
    "break every 4 hours. Ideally use electric vans. Customers order online and the warehouse dispatches trucks "
    "when orders arrive. Assume traffic is typically light. Ignore weather."
)
CONSTRAINTS = [{"name": "max_wait_4h", "weight": 100}, {"name": "budget", "weight": 60}]


def judge_prompt(first: list[str], second: list[str], task: str = HELLO_TASK) -> str:
    candidates = [
        {"name": "openai", "output": {"questions": [{"question": q, "rationale": "r"} for q in first]}},
        {"name": "anthropic", "output": {"questions": [{"question": q, "rationale": "r"} for q in second]}},
    ]
    return f"Task: {task}\nChoose the better set of questions.\n{json.dumps({'candidates': candidates})}"


def architect_prompt(message: str, problem_spec: Any = None, world_model: Any = None) -> str:
    context = json.dumps({"problem_spec": problem_spec, "world_model": world_model})
    return f"Context: {context}\n\nUser message: {message}"


def evaluation_prompt(candidate: str, scenario: str = "Demand surge", severity: str = "high") -> str:
    payload = {
        "candidate": {"title": candidate, "description": f"{candidate}: keep ten percent of beds free"},
        "scenario": {"title": scenario, "severity": severity},
        "constraints": CONSTRAINTS,
    }
    return f"Evaluate the candidate in the scenario.\n{json.dumps(payload)}"


PROMPTS = {
    "planning_questions": HELLO_TASK,
    "judge_decision": judge_prompt(["What text?"], ["Which Python version?", "Trailing newline?"]),
    "architect_reply": architect_prompt(DELIVERY_TEXT),
    "problem_spec_refinement": DELIVERY_TEXT,
    "world_model_refinement": DELIVERY_TEXT,
    "design_candidates": "num_candidates: 4\nReduce waiting time in a hospital emergency department.",
    "scenarios": "num_scenarios: 3\nReduce waiting time in a hospital emergency department.",
    "evaluation": evaluation_prompt("Capacity buffer for beds"),
    "sprint_plan": "Write a function `is_prime` with pytest tests.",
}


def run(task: str, prompt: str, *, provider: Provider = "openai", model: str = "gpt-test", schema: Any = None) -> Any:
    result = answer(structured(task, schema or task_schemas.BY_TASK[task], prompt, provider=provider, model=model))
    return result.structured


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_validates_against_its_schema(task: str, provider: Provider) -> None:
    value = run(task, PROMPTS[task], provider=provider)
    jsonschema.validate(value, task_schemas.BY_TASK[task])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_also_validates_against_a_loose_schema(task: str) -> None:
    value = run(task, PROMPTS[task], schema={"type": "object"})
    assert isinstance(value, dict)
    assert value


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_depends_on_its_input(task: str) -> None:
    other = {
        "planning_questions": "Implement a function `gcd` that returns the greatest common divisor.",
        "judge_decision": judge_prompt(["A?", "B?", "C?"], ["D?"], task="Compute a gcd"),
        "architect_reply": architect_prompt("Shops must open before 9am. We want to maximize sales."),
        "problem_spec_refinement": "Shops must open before 9am. We want to maximize sales.",
        "world_model_refinement": "Farmers sell produce to shops. Assume prices are stable.",
        "design_candidates": "num_candidates: 4\nCut energy use in an office building.",
        "scenarios": "num_scenarios: 3\nCut energy use in an office building.",
        "evaluation": evaluation_prompt("Night shutdown of heating"),
        "sprint_plan": HELLO_TASK,
    }[task]
    assert run(task, PROMPTS[task]) != run(task, other)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_is_deterministic(task: str) -> None:
    assert run(task, PROMPTS[task]) == run(task, PROMPTS[task])


@pytest.mark.parametrize(
    "task", ["planning_questions", "architect_reply", "design_candidates", "scenarios", "problem_spec_refinement"]
)
def test_two_providers_give_different_valid_variants(task: str) -> None:
    first = run(task, PROMPTS[task], provider="openai", model="gpt-4.1")
    second = run(task, PROMPTS[task], provider="anthropic", model="claude-sonnet")
    assert first != second


# ---- planning_questions


def test_planning_questions_count_follows_the_schema_max_items() -> None:
    assert len(run("planning_questions", HELLO_TASK)["questions"]) == 5


def test_planning_questions_count_follows_the_prompt_directive() -> None:
    questions = run("planning_questions", f"max_questions: 2\n{HELLO_TASK}", schema={"type": "object"})["questions"]
    assert len(questions) == 2


def test_planning_questions_default_to_three_and_quote_the_task() -> None:
    questions = run("planning_questions", HELLO_TASK, schema={"type": "object"})["questions"]
    assert len(questions) == 3
    assert all("hello world" in q["question"] or "'hello'" in q["question"] for q in questions)
    assert len({q["question"] for q in questions}) == 3


def test_planning_questions_beyond_the_bank_stay_distinct() -> None:
    questions = run("planning_questions", f"max_questions: 14\n{HELLO_TASK}", schema={"type": "object"})["questions"]
    assert len(questions) == 14
    assert len({q["question"] for q in questions}) == 14


# ---- judge_decision


def test_planning_questions_ask_about_the_task_s_matter_before_its_tools() -> None:
    questions = run("planning_questions", "Write a Python function is_prime(n) with pytest tests.\nmax_questions: 10")
    edge_cases = next(q["question"] for q in questions["questions"] if "edge cases" in q["question"])
    assert "'is_prime'" in edge_cases
    assert "'python'" not in edge_cases


def test_judge_picks_the_candidate_with_more_distinct_relevant_questions() -> None:
    prompt = judge_prompt(
        ["What should it print?"],
        ["Should 'hello world' be followed by a newline?", "Which Python version runs the script?", "Stdout only?"],
    )
    decision = run("judge_decision", prompt)
    assert decision["choice"] == "anthropic"
    assert "anthropic" in decision["rationale"]


def test_judge_choice_is_a_candidate_name_without_an_enum() -> None:
    schema = task_schemas.obj({"choice": task_schemas.STRING, "rationale": task_schemas.STRING})
    candidates = [{"name": "alpha", "output": "What prints?"}, {"name": "beta", "output": "Hello world format?"}]
    decision = run("judge_decision", f"{HELLO_TASK}\n{json.dumps({'candidates': candidates})}", schema=schema)
    assert decision["choice"] in {"alpha", "beta"}
    assert decision["choice"] in decision["rationale"]


def test_judge_prefers_the_first_candidate_on_a_tie() -> None:
    decision = run("judge_decision", judge_prompt(["Same question?"], ["Same question?"]))
    assert decision["choice"] == "openai"


# ---- architect_reply


@pytest.mark.parametrize(
    "message",
    [
        "run it",
        "Please run the pipeline now.",
        "Go ahead.",
        "OK, start the pipeline",
        "Let's try it!",
        "Can you execute this with 5 candidates?",
        "I'd like to run a search now",
        "execute",
    ],
)
def test_architect_recognises_a_wish_to_run(message: str) -> None:
    assert wants_to_run(message)


@pytest.mark.parametrize(
    "message",
    [
        "The vans must run on electricity.",
        "Don't run it yet, I want to add constraints.",
        "How long does a run usually take?",
        "We want to minimize the running cost.",
    ],
)
def test_architect_does_not_mistake_refinements_for_run_requests(message: str) -> None:
    assert not wants_to_run(message)


def test_architect_run_request_without_spec_is_blocked_and_says_what_is_missing() -> None:
    reply = run("architect_reply", architect_prompt("Great, let's run it with 4 candidates and 2 scenarios."))
    assert reply["intent"] == "run_request"
    config = reply["recommended_run_config"]
    assert config["status"] == "blocked"
    assert config["blockers"] == ["missing_problem_spec", "missing_world_model"]
    assert config["parameters"] == {"num_candidates": 4, "num_scenarios": 2}
    assert config["estimated_cost_usd"] > 0
    assert "4 candidates and 2 scenarios" in reply["reply"]
    # No price a model could not know, and no promise about starting it: the service says both.
    assert "$" not in reply["reply"].replace("$10k", "")
    assert "problem specification" in reply["reply"]
    assert "world model" in reply["reply"]
    assert config["rationale"].endswith("Blocked until the project has a problem spec and a world model.")


def test_architect_run_request_with_spec_and_world_model_is_ready() -> None:
    spec = {"constraints": [{"name": "budget", "weight": 100}], "goals": [{"description": "x"}], "mode": "eval_only"}
    world = {"model_data": {"actors": [{"name": "user", "description": "d"}]}}
    reply = run("architect_reply", architect_prompt("go ahead", spec, world))
    config = reply["recommended_run_config"]
    assert config["status"] == "ready"
    assert config["blockers"] == []
    assert config["mode"] == "eval_only"
    assert "mode eval_only" in reply["reply"]
    assert reply["problem_spec_patch"] is None
    assert reply["world_model_patch"] is None


def test_architect_refinement_derives_patches_from_the_message() -> None:
    reply = run("architect_reply", PROMPTS["architect_reply"])
    assert reply["intent"] == "refine"
    assert reply["recommended_run_config"] is None
    spec_patch = reply["problem_spec_patch"]
    weights = {c["description"]: c["weight"] for c in spec_patch["constraints"]}
    assert weights["The delivery vans must never exceed 8 hours per shift."] == 100
    assert any("fuel" in g["description"] for g in spec_patch["goals"])
    actors = [a["name"] for a in reply["world_model_patch"]["model_data"]["actors"]]
    assert "customer" in actors
    # Said as a Markdown list of what changed (apart from the sentences around it), one line a part,
    # each goal quoted without its sentence's end.
    lines = reply["reply"].splitlines()
    assert lines[1] == lines[-2] == ""
    assert [line.split(":")[0] for line in lines[2:-2]] == ["- Constraints", "- Goals", "- World model"]
    goals = next(line for line in lines if line.startswith("- Goals"))
    assert all(f'"{g["description"].rstrip(".")}"' in goals for g in spec_patch["goals"])
    assert '."' not in goals
    assert "1 mechanism (" in lines[-3]


def test_architect_answers_a_question_without_patches() -> None:
    spec = {"constraints": [{"name": "budget", "weight": 100}], "goals": []}
    reply = run("architect_reply", architect_prompt("What is in the current specification?", spec))
    assert reply["intent"] == "question"
    assert reply["problem_spec_patch"] is None
    assert reply["world_model_patch"] is None
    assert "budget" in reply["reply"]


@pytest.mark.parametrize("message", ["Yes, apply those changes.", "Looks good, thanks!", "ok"])
def test_architect_takes_an_agreement_as_one_not_as_a_refinement_it_could_not_read(message: str) -> None:
    spec = {"constraints": [{"name": "budget", "weight": 100}], "goals": []}
    world = {"model_data": {"actors": [{"name": "user", "description": "d"}]}}
    reply = run("architect_reply", architect_prompt(message, spec, world))
    assert reply["intent"] == "refine"
    assert reply["problem_spec_patch"] is None
    assert reply["world_model_patch"] is None
    assert reply["recommended_run_config"] is None
    assert "in the project" in reply["reply"]
    assert "did not find" not in reply["reply"]
    # What the project still lacks before a run is said.
    without_world = run("architect_reply", architect_prompt(message, spec, None))["reply"]
    assert "world model" in without_world


def test_architect_reads_a_limit_given_as_an_instruction_as_a_constraint() -> None:
    reply = run("architect_reply", architect_prompt("Keep the budget under 2 million a year."))
    assert [(c["description"], c["weight"]) for c in reply["problem_spec_patch"]["constraints"]] == [
        ("Keep the budget under 2 million a year.", 70)
    ]
    # A must stays hard.
    hard = run("architect_reply", architect_prompt("Shifts must not exceed 12 hours."))
    assert [c["weight"] for c in hard["problem_spec_patch"]["constraints"]] == [100]


@pytest.mark.parametrize(
    ("message", "weight"),
    [
        # As a person first describes a problem: a need, and a limit said to be hard.
        (
            "We need a way for 5,000 commuters a day to cross the river, budget under 20 million euros (hard limit).",
            100,
        ),
        ("The budget stays below 2 million a year.", 70),
        ("Noise below 60 dB at night.", 70),
    ],
)
def test_architect_reads_a_limit_stated_as_a_measure_and_its_bound(message: str, weight: int) -> None:
    reply = run("architect_reply", architect_prompt(message))
    assert [(c["description"], c["weight"]) for c in reply["problem_spec_patch"]["constraints"]] == [(message, weight)]


def test_architect_reads_a_need_as_a_goal() -> None:
    reply = run("architect_reply", architect_prompt("We need a bridge for the morning commuters."))
    assert [g["description"] for g in reply["problem_spec_patch"]["goals"]] == [
        "We need a bridge for the morning commuters."
    ]


# ---- problem_spec_refinement and world_model_refinement


def test_problem_spec_weights_follow_the_modal_verbs() -> None:
    spec = run("problem_spec_refinement", DELIVERY_TEXT)
    weights = {c["description"].split()[1]: c["weight"] for c in spec["constraints"]}
    assert weights == {"delivery": 100, "should": 70, "use": 50} or sorted(weights.values()) == [50, 70, 100]
    assert [g["description"] for g in spec["goals"]] == ["We want to minimize fuel cost."]
    assert len({c["name"] for c in spec["constraints"]}) == len(spec["constraints"])


def test_problem_spec_always_has_a_goal() -> None:
    spec = run("problem_spec_refinement", "The clinic cannot open on Sundays.")
    assert spec["constraints"][0]["weight"] == 100
    assert len(spec["goals"]) == 1
    assert "clinic" in spec["goals"][0]["description"]


def test_problem_spec_merges_into_an_existing_spec() -> None:
    existing = {"constraints": [{"name": "budget", "description": "b", "weight": 80}], "goals": [], "mode": "seeded"}
    prompt = f"{json.dumps({'problem_spec': existing})}\nWe prefer a fine-grained model."
    spec = run("problem_spec_refinement", prompt)
    assert spec["constraints"][0]["name"] == "budget"
    assert spec["resolution"] == "fine"
    assert spec["mode"] == "seeded"


def test_world_model_has_every_section_with_named_items() -> None:
    model = run("world_model_refinement", DELIVERY_TEXT)["model_data"]
    assert set(model) == {"actors", "mechanisms", "resources", "constraints", "assumptions", "simplifications"}
    assert all(items and all(item["name"] and item["description"] for item in items) for items in model.values())
    assert any(item["name"] == "ignore_weather" for item in model["simplifications"])
    assert any("traffic" in item["description"] for item in model["assumptions"])
    # "never exceed 8 hours per shift" bounds a shift: an hour is not a resource of the system.
    assert "hour" not in {item["name"] for item in model["resources"]}
    assert {"fuel", "truck"} <= {item["name"] for item in model["resources"]}


# ---- candidates, scenarios, evaluation, sprint plan


def test_design_candidates_count_and_distinct_titles() -> None:
    candidates = run("design_candidates", PROMPTS["design_candidates"])["candidates"]
    assert len(candidates) == 4
    assert len({c["title"] for c in candidates}) == 4


def test_design_candidates_count_is_clamped_by_the_schema() -> None:
    schema = task_schemas.DESIGN_CANDIDATES | {}
    schema["properties"] = {"candidates": schema["properties"]["candidates"] | {"minItems": 2, "maxItems": 2}}
    assert len(run("design_candidates", PROMPTS["design_candidates"], schema=schema)["candidates"]) == 2


def test_design_candidates_mention_hard_constraints_of_the_spec() -> None:
    spec = {"constraints": [{"name": "max_wait_4h", "weight": 100}], "goals": [{"description": "Shorter waits"}]}
    candidates = run("design_candidates", f"Propose designs.\n{json.dumps({'problem_spec': spec})}")["candidates"]
    assert len(candidates) == 3
    assert all("max_wait_4h" in c["description"] for c in candidates)


def test_scenarios_count_and_severity() -> None:
    scenarios = run("scenarios", PROMPTS["scenarios"])["scenarios"]
    assert len(scenarios) == 3
    assert {s["severity"] for s in scenarios} <= {"low", "medium", "high"}
    assert len({s["title"] for s in scenarios}) == 3


def test_candidates_and_scenarios_are_named_after_the_problem_not_the_instruction_around_it() -> None:
    problem = {
        "problem_spec": {
            "constraints": [
                {"name": "max_wait", "description": "Patients must never wait over 4 hours.", "weight": 100}
            ],
            "goals": [{"description": "Reduce waiting time in the emergency department."}],
        }
    }
    state = json.dumps(problem, indent=1)
    candidates = run(
        "design_candidates", f"Propose candidate designs for this problem.\n\n{state}\n\nnum_candidates: 8"
    )
    scenarios = run("scenarios", f"Write the scenarios to test designs for this problem against.\n\n{state}")
    named = " ".join(c["title"] for c in candidates["candidates"]) + " ".join(
        s["title"] for s in scenarios["scenarios"]
    )
    assert {"propose", "candidate", "designs", "problem", "never"}.isdisjoint(named.lower().split())
    # After what the problem is about, as noun phrases, not single words ("for waiting", "for hours").
    titles = [c["title"] for c in candidates["candidates"]]
    assert {t.partition(" for ")[2] for t in titles} == {"the emergency department", "patients", "the waiting time"}
    assert {s["title"].partition(": ")[2] for s in scenarios["scenarios"]} >= {"emergency department", "patients"}


def test_one_design_of_three_or_more_counts_on_breaking_a_hard_constraint_and_is_found_out() -> None:
    problem = {"problem_spec": {"constraints": [{"name": "budget", "weight": 100}], "goals": [{"description": "x"}]}}
    prompt = f"Propose candidate designs for this problem.\n\n{json.dumps(problem)}\n\nnum_candidates: 4"
    designs = run("design_candidates", prompt)["candidates"]
    assert ["budget can be exceeded" in " ".join(d["assumptions"]) for d in designs] == [False, False, False, True]
    for scenario in ("Baseline", "Demand surge", "Budget cut"):
        payload = {
            "candidate": designs[-1],
            "scenario": {"title": scenario},
            "constraints": [{"name": "budget", "weight": 100}],
        }
        answer = run("evaluation", f"Evaluate the candidate in the scenario.\n{json.dumps(payload)}")
        assert answer["constraint_satisfaction"][0]["satisfied"] is False
    # Two designs: no overreach.
    two = run("design_candidates", prompt.replace("num_candidates: 4", "num_candidates: 2"))["candidates"]
    assert not any("can be exceeded" in " ".join(d["assumptions"]) for d in two)


def test_evaluation_reports_each_constraint_of_the_prompt() -> None:
    result = run("evaluation", PROMPTS["evaluation"])
    assert [c["constraint"] for c in result["constraint_satisfaction"]] == ["max_wait_4h", "budget"]
    assert 0 <= result["P"]["overall"] <= 1
    assert result["R"]["overall"] > 0
    assert "Capacity buffer for beds" in result["explanation"]


def test_evaluation_rankings_are_not_trivial() -> None:
    results = [run("evaluation", evaluation_prompt(f"Design {i}")) for i in range(60)]
    hard = [r["constraint_satisfaction"][0]["satisfied"] for r in results]
    assert 0 < hard.count(False) < 20
    assert len({r["P"]["overall"] for r in results}) > 40


def test_evaluation_candidates_differ_over_many_scenarios() -> None:
    # What the run's I-ranker sees: each candidate's P and R averaged over its scenarios. Were the
    # pair alone to decide the scores, every average would sit at the middle (I ≈ 1: UNDER_TEST).
    scenarios = [(f"Scenario {j}", ("low", "medium", "high")[j % 3]) for j in range(20)]
    ratios = []
    for i in range(10):
        results = [run("evaluation", evaluation_prompt(f"Design {i}", s, severity)) for s, severity in scenarios]
        p = sum(r["P"]["overall"] for r in results) / len(results)
        r = sum(r["R"]["overall"] for r in results) / len(results)
        ratios.append(p / r)
    assert any(i >= 1.1 for i in ratios), ratios  # PROMISING
    assert any(i < 0.9 for i in ratios), ratios  # WEAK
    assert any(0.9 <= i < 1.1 for i in ratios), ratios  # UNDER_TEST


def test_evaluation_hard_violations_hold_across_scenarios_of_a_candidate() -> None:
    verdicts = {
        run("evaluation", evaluation_prompt("Design 7", scenario))["constraint_satisfaction"][0]["satisfied"]
        for scenario in ("Baseline", "Demand surge", "Budget cut")
    }
    assert len(verdicts) == 1


def test_sprint_plan_for_hello_world_names_hello_py() -> None:
    plan = run("sprint_plan", HELLO_TASK)
    assert plan["files"] == ["hello.py"]
    assert "hello world" in plan["plan_markdown"]


def test_sprint_plan_for_a_function_names_module_and_test_file() -> None:
    plan = run("sprint_plan", PROMPTS["sprint_plan"])
    assert plan["files"] == ["is_prime.py", "test_is_prime.py"]
    assert all(t.startswith("test_is_prime.py::") for t in plan["tests"])
    assert plan["plan_markdown"].startswith("# Implementation plan")


def test_task_names_are_matched_in_snake_case() -> None:
    value = run("PlanningQuestions", HELLO_TASK, schema=task_schemas.PLANNING_QUESTIONS)
    assert "hello world" in value["questions"][0]["question"]


def test_architect_run_request_keeps_the_other_statements_as_patches() -> None:
    reply = run("architect_reply", architect_prompt("The budget must stay under 5000 euros. I want to run it now."))
    assert reply["intent"] == "run_request"
    assert [c["weight"] for c in reply["problem_spec_patch"]["constraints"]] == [100]
    assert reply["problem_spec_patch"]["goals"] == []


def _architect_with(history: tuple[Message, ...], message: str, runs: Any = None) -> Any:
    state: dict[str, Any] = {"problem_spec": {"constraints": [], "goals": []}, "world_model": None}
    if runs is not None:
        state["runs"] = runs
    request = structured("architect_reply", task_schemas.BY_TASK["architect_reply"], "")
    request = replace(
        request, messages=(*history, Message("user", f"{message}\n\nProject state:\n{json.dumps(state)}"))
    )
    return answer(request).structured


def test_architect_answers_a_question_about_the_runs_from_the_runs_it_was_given() -> None:
    runs = [
        {
            "run_id": "3f70698f-0456",
            "mode": "full_search",
            "status": "COMPLETED",
            "counts": {"candidates": 3, "scenarios": 4, "evaluations": 12, "failed_evaluations": 0},
            "top_candidates": [
                {"title": "Cost minimal", "label": "promising", "I": 1.41, "P": 0.63, "R": 0.44, "rejected": False},
                {
                    "title": "Capacity buffer",
                    "label": "rejected",
                    "I": 1.2,
                    "P": 0.5,
                    "R": 0.4,
                    "rejected": True,
                    "violated_constraints": ["patients_wait_hours"],
                },
            ],
        }
    ]

    reply = _architect_with((), "Which candidate did best, and why was one rejected?", runs)

    assert reply["intent"] == "question"
    assert reply["reply"].startswith(
        "In run 3f70698f (full_search, completed: 3 candidates × 4 scenarios), the best was 'Cost minimal' with I 1.41"
    )
    assert "'Capacity buffer' was rejected: it broke patients_wait_hours." in reply["reply"]
    assert "no runs yet" in _architect_with((), "Which candidate is best?", [])["reply"]


def test_architect_answers_a_question_about_the_last_run_from_its_summary_in_the_chat() -> None:
    summary = Message(
        "assistant",
        "**Run 5eb12897 summary** (full_search): completed in 0.7 s, 3 candidates × 4 scenarios, 12 evaluations.\n"
        "1. Cost minimal: I 1.41 (P 0.63, R 0.44)\n"
        "Rejected: Capacity buffer, broke patients_wait_hours in 4 of 4 scenarios\n"
        "Results: /runs/5eb12897",
    )

    reply = _architect_with((Message("user", "Let's run it."), summary), "Which candidate did best?")["reply"]

    assert reply == (
        "From Run 5eb12897 summary: 1. Cost minimal: I 1.41 (P 0.63, R 0.44); "
        "Rejected: Capacity buffer, broke patients_wait_hours in 4 of 4 scenarios"
    )
    # Without a run in sight, a question is answered about the project as before.
    assert "problem specification" in _architect_with((), "Which candidate did best?")["reply"]
