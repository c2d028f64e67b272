"""What the sprint's agents are told: the plan's schema, the coder's and the verifier's instructions."""

from __future__ import annotations

from crucible_agent.domain.model import JsonObject
from crucible_agent.domain.sprints import MAX_RETRIES, Sprint

PLAN_FILE = "implementation_plan.md"
PLAN_SCHEMA_NAME = "sprint_plan"
SPRINT_PLAN_SCHEMA: JsonObject = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 1},
        "steps": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "files": {"type": "array", "items": {"type": "string"}},
        "tests": {"type": "array", "items": {"type": "string"}},
        "plan_markdown": {"type": "string", "minLength": 1},
    },
    "required": ["summary", "steps", "files", "tests", "plan_markdown"],
}
PLAN_INSTRUCTION = (
    f"Plan this sprint: give the steps, the files and the tests, and the plan as Markdown for {PLAN_FILE}."
)

CODER_TOOLS = ("fs_read_file", "fs_write_file", "fs_list_dir", "run_tests")
CODER_SYSTEM = (
    "You are the coding agent of a sprint. Work only through your tools, in the sprint's workspace: "
    "write the program and pytest tests for it (test files named test_*.py), run the tests with "
    "run_tests, and fix the code until they pass. When they pass, answer with VERIFICATION_SUCCESS "
    "and a short summary of the files."
)

# The verifier may look and run, never change.
VERIFIER_TOOLS = ("fs_read_file", "fs_list_dir", "run_tests")
VERIFIER_SYSTEM = (
    "You are verifying a sprint. You may read files and run the tests, but not change anything. "
    "Run the tests with run_tests. Answer VERIFICATION_SUCCESS only if they pass; otherwise answer "
    "VERIFICATION_FAILED and say what fails."
)


def task_prompt(sprint: Sprint, instruction: str = "") -> str:
    """The sprint's task, goal and planning answers, then what to do with them."""
    answers = "\n".join(f"- {q}\n  {a}" for q, a in sprint.spec.answers)
    parts = [f"Task: {sprint.spec.task}", f"Sprint goal: {sprint.goal}" if sprint.goal else ""]
    if answers:
        parts.append(f"Answers to the planning questions:\n{answers}")
    if instruction:
        parts.append(instruction)
    return "\n\n".join(p for p in parts if p)


def coder_system(plan: str, attempt: int, feedback: str) -> str:
    """The coder's instructions for ``attempt``, told what made the previous one fail."""
    system = f"{CODER_SYSTEM}\n\nImplementation plan:\n{plan}"
    if feedback:
        system += f"\n\nAttempt {attempt} of {MAX_RETRIES}. The previous attempt failed:\n{feedback}\nFix it."
    return system
