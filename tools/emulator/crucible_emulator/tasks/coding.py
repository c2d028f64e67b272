"""``sprint_plan``: the plan the coding agent would follow for a task."""

from __future__ import annotations

from crucible_emulator import coding_agent
from crucible_emulator.conversation import JsonObject
from crucible_emulator.tasks.context import TaskContext


def sprint_plan(ctx: TaskContext) -> JsonObject:
    task = coding_agent.parse_task(coding_agent.task_sources(ctx.request))
    plan = coding_agent.plan_for(task)
    return {
        "summary": plan.summary,
        "steps": list(plan.steps),
        "files": list(plan.files),
        "tests": list(plan.tests),
        "plan_markdown": plan.markdown,
    }
