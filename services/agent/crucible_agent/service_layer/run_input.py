"""What an agent run may be asked to do: its message, subagents and judge, checked before anything runs."""

from __future__ import annotations

from collections.abc import Callable

from crucible_agent.domain.model import ChatMessage, JudgeConfig, SubagentConfig
from crucible_common.errors import FieldViolation, ValidationFailed

# The bounds the gateway's REST bodies keep too, held here for every gRPC caller.
MAX_SUBAGENTS = 8
MAX_MESSAGE_CHARS = 200_000
MAX_HISTORY = 1_000
MAX_INSTRUCTIONS_CHARS = 20_000
MAX_LABEL_CHARS = 200
MAX_REASON_CHARS = 2_000


def validate_run(
    message: str,
    subagents: tuple[SubagentConfig, ...],
    judge: JudgeConfig | None,
    check_provider: Callable[[str, str], None],
    history: tuple[ChatMessage, ...] = (),
) -> None:
    """Every violation of an agent run's input at once; then whether its providers can be called."""
    problems: list[FieldViolation] = []
    if not message.strip():
        problems.append(FieldViolation("message", "must not be empty"))
    if len(message) > MAX_MESSAGE_CHARS:
        problems.append(FieldViolation("message", f"at most {MAX_MESSAGE_CHARS} characters"))
    if len(history) > MAX_HISTORY:
        problems.append(FieldViolation("history", f"at most {MAX_HISTORY} messages"))
    problems += [
        FieldViolation(f"history[{i}].content", f"at most {MAX_MESSAGE_CHARS} characters")
        for i, m in enumerate(history)
        if len(m.content) > MAX_MESSAGE_CHARS
    ]
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
        if len(s.system_prompt) > MAX_INSTRUCTIONS_CHARS:
            problems.append(
                FieldViolation(f"subagents[{i}].system_prompt", f"at most {MAX_INSTRUCTIONS_CHARS} characters")
            )
    if judge is not None and not judge.model.strip():
        problems.append(FieldViolation("judge.model_name", "must not be empty"))
    if judge is not None and len(judge.instructions) > MAX_INSTRUCTIONS_CHARS:
        problems.append(FieldViolation("judge.instructions", f"at most {MAX_INSTRUCTIONS_CHARS} characters"))
    if problems:
        raise ValidationFailed(problems, "agent run")
    for i, s in enumerate(subagents):
        check_provider(s.provider, f"subagents[{i}].provider")
    if judge is not None:
        check_provider(judge.provider, "judge.provider")


def fork_violations(checkpoint_label: str, label: str, reason: str) -> list[FieldViolation]:
    """What a fork request carries past its bounds."""
    bounds = {
        "checkpoint_label": (checkpoint_label, MAX_LABEL_CHARS),
        "label": (label, MAX_LABEL_CHARS),
        "reason": (reason, MAX_REASON_CHARS),
    }
    return [
        FieldViolation(name, f"at most {most} characters")
        for name, (value, most) in bounds.items()
        if len(value) > most
    ]
