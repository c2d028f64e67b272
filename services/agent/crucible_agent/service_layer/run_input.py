"""What an agent run may be asked to do: its message, subagents and judge, checked before anything runs."""

from __future__ import annotations

from collections.abc import Callable

from crucible_agent.domain.model import JudgeConfig, SubagentConfig
from crucible_common.errors import FieldViolation, ValidationFailed

MAX_SUBAGENTS = 8
MAX_MESSAGE_CHARS = 200_000


def validate_run(
    message: str,
    subagents: tuple[SubagentConfig, ...],
    judge: JudgeConfig | None,
    check_provider: Callable[[str, str], None],
) -> None:
    """Every violation of an agent run's input at once; then whether its providers can be called."""
    problems: list[FieldViolation] = []
    if not message.strip():
        problems.append(FieldViolation("message", "must not be empty"))
    if len(message) > MAX_MESSAGE_CHARS:
        problems.append(FieldViolation("message", f"at most {MAX_MESSAGE_CHARS} characters"))
    if not subagents:
        problems.append(FieldViolation("subagents", "no subagent given and no provider configured"))
    if len(subagents) > MAX_SUBAGENTS:
        problems.append(FieldViolation("subagents", f"at most {MAX_SUBAGENTS}"))
    seen: set[str] = set()
    for i, s in enumerate(subagents):
        if not s.name.strip() or len(s.name) > 100:
            problems.append(FieldViolation(f"subagents[{i}].name", "1 to 100 characters"))
        elif s.name in seen:
            problems.append(FieldViolation(f"subagents[{i}].name", f"duplicate name {s.name!r}"))
        seen.add(s.name)
        if not s.model.strip():
            problems.append(FieldViolation(f"subagents[{i}].model_name", "must not be empty"))
    if judge is not None and not judge.model.strip():
        problems.append(FieldViolation("judge.model_name", "must not be empty"))
    if problems:
        raise ValidationFailed(problems, "agent run")
    for i, s in enumerate(subagents):
        check_provider(s.provider, f"subagents[{i}].provider")
    if judge is not None:
        check_provider(judge.provider, "judge.provider")
