"""Enum names on the REST API come from the proto descriptors, and are the strings clients know."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible_common.enums import dotted
from crucible_gateway.schemas import agent_runs, changes, chat, problem_spec, specs, sprints, usage
from crucible_gateway.schemas.common import RestEnum

# The REST strings clients (the CLI, the UI, scripts) depend on: a change here is a breaking one.
REST_NAMES: list[tuple[RestEnum[Any], tuple[str, ...]]] = [
    (chat.CHAT_MODE, ("setup", "analysis")),
    (chat.ROLE, ("user", "agent", "system")),
    (changes.ACTOR_KIND, ("user", "architect", "system")),
    (problem_spec.RESOLUTION, ("coarse", "medium", "fine")),
    (problem_spec.RUN_MODE, ("full_search", "eval_only", "seeded")),
    (specs.INTERVIEW_MODE, ("dual_subagent", "single", "stub")),
    (specs.SPEC_STATUS, ("draft", "validated")),
    (specs.PLANNING_STATUS, ("needs_answers", "answered")),
    (agent_runs.ROLE, ("system", "user", "assistant")),
    (agent_runs.RECORDING_MODE, ("record", "replay")),
    (agent_runs.RUN_STATUS, ("running", "completed", "failed", "cancelled")),
    (usage.CALL_STATUS, ("succeeded", "failed", "invalid_output", "replayed", "cancelled")),
    (sprints.SPRINT_STATUS, ("planned", "active", "completed", "failed", "cancelled")),
    (sprints.SPRINT_PHASE, ("discovery", "coding", "verification")),
    (sprints.ATTEMPT_STATUS, ("running", "completed", "failed", "cancelled")),
    (
        sprints.EVENT_TYPE,
        (
            "sprint.created",
            "sprint.started",
            "phase.started",
            "phase.completed",
            "phase.failed",
            "candidate.completed",
            "candidate.failed",
            "judge.decided",
            "tool.called",
            "sprint.completed",
            "sprint.failed",
            "phase.cancelled",
            "sprint.cancelled",
        ),
    ),
]


@pytest.mark.parametrize(("enum", "names"), REST_NAMES, ids=lambda v: repr(v) if isinstance(v, RestEnum) else "")
def test_the_rest_names_are_the_ones_clients_know(enum: RestEnum[Any], names: tuple[str, ...]) -> None:
    assert enum.names == names
    assert [enum.name(enum.number(name)) for name in names] == list(names)


def test_names_and_numbers_come_from_the_descriptor() -> None:
    status = RestEnum(sprint_pb.SprintStatus)
    assert status.number("active") == sprint_pb.SPRINT_STATUS_ACTIVE
    assert status.name(sprint_pb.SPRINT_STATUS_FAILED) == "failed"
    assert RestEnum(sprint_pb.SprintEventType, dotted).name(sprint_pb.SPRINT_EVENT_TYPE_TOOL_CALLED) == "tool.called"


def test_unspecified_has_no_name() -> None:
    status = RestEnum(sprint_pb.SprintStatus)
    assert "unspecified" not in status.names
    assert status.optional(sprint_pb.SPRINT_STATUS_UNSPECIFIED) is None
    assert status.optional(sprint_pb.SPRINT_STATUS_PLANNED) == "planned"
    with pytest.raises(ValueError, match=r"crucible.agent.v1.SprintStatus has no REST name for 0"):
        status.name(0)
    with pytest.raises(ValueError, match="no REST name for 99"):
        status.name(99)


def test_an_excluded_value_is_read_but_not_accepted() -> None:
    role = RestEnum(agent_pb.Role, exclude=("tool",))
    assert role.names == ("system", "user", "assistant")
    assert role.name(agent_pb.ROLE_TOOL) == "tool"
    with pytest.raises(ValidationError):
        TypeAdapter(Annotated[str, role]).validate_python("tool")
    with pytest.raises(ValueError, match=r"no values \['robot'\] to exclude"):
        RestEnum(agent_pb.Role, exclude=("robot",))


def test_the_annotated_type_validates_and_documents_the_names() -> None:
    adapter: TypeAdapter[str] = TypeAdapter(Annotated[str, RestEnum(sprint_pb.SprintPhase)])

    assert adapter.validate_python("coding") == "coding"
    with pytest.raises(ValidationError, match="'discovery', 'coding' or 'verification'"):
        adapter.validate_python("CODING")
    with pytest.raises(ValidationError):
        adapter.validate_python(2)
    assert adapter.json_schema() == {"enum": ["discovery", "coding", "verification"], "type": "string"}


async def test_the_openapi_document_lists_the_names_of_request_and_response_fields(http: httpx.AsyncClient) -> None:
    schemas = (await http.get("/api/openapi.json")).json()["components"]["schemas"]

    def enum_of(model: str, field: str) -> list[str]:
        schema = schemas[model]["properties"][field]
        options = schema.get("anyOf", [schema])
        names: list[str] = next(o["enum"] for o in options if "enum" in o)
        return names

    assert enum_of("ChatSessionCreate", "mode") == ["setup", "analysis"]
    assert enum_of("ChatMessageCreate", "role") == ["user", "agent", "system"]
    assert enum_of("ProblemSpecPatch", "resolution") == ["coarse", "medium", "fine"]
    assert enum_of("Actor", "kind") == ["user", "architect", "system"]
    assert enum_of("SpecCreate", "mode") == ["dual_subagent", "single", "stub"]
    assert enum_of("HistoryMessage", "role") == ["system", "user", "assistant"]
    assert enum_of("RecordingBody", "mode") == ["record", "replay"]
    assert enum_of("SprintRead", "status") == ["planned", "active", "completed", "failed", "cancelled"]
    assert enum_of("SprintRead", "current_phase") == ["discovery", "coding", "verification"]
    assert enum_of("PhaseRead", "status") == ["running", "completed", "failed", "cancelled"]
