"""The sizes (and forms) the agent schema stores; checked at the boundary so bad input is a 400, not a 500."""

from __future__ import annotations

from crucible_agent.domain.model import Correlation, Recording
from crucible_common.errors import FieldViolation

MAX_ID = 100
MAX_MODEL = 200
MAX_SCHEMA_NAME = 100
MAX_RECORDING_KEY = 200
MAX_WORKSPACE_REF = 500


def size_violations(
    *,
    correlation: Correlation | None = None,
    recording: Recording | None = None,
    models: dict[str, str] | None = None,
    schema_name: str = "",
    workspace_ref: str = "",
) -> list[FieldViolation]:
    problems: list[FieldViolation] = []
    if correlation is not None:
        for name, value in vars(correlation).items():
            if len(value) > MAX_ID:
                problems.append(FieldViolation(f"correlation.{name}", f"at most {MAX_ID} characters"))
    if recording is not None and len(recording.key) > MAX_RECORDING_KEY:
        problems.append(FieldViolation("recording.recording_key", f"at most {MAX_RECORDING_KEY} characters"))
    elif recording is not None and recording.problem is not None:
        problems.append(FieldViolation("recording.recording_key", recording.problem))
    for field, model in (models or {}).items():
        if len(model) > MAX_MODEL:
            problems.append(FieldViolation(field, f"at most {MAX_MODEL} characters"))
    if len(schema_name) > MAX_SCHEMA_NAME:
        problems.append(FieldViolation("schema_name", f"at most {MAX_SCHEMA_NAME} characters"))
    if len(workspace_ref) > MAX_WORKSPACE_REF:
        problems.append(FieldViolation("workspace_ref", f"at most {MAX_WORKSPACE_REF} characters"))
    return problems
