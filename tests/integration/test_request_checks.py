"""Every service refuses, before any handler, what no field of any request may carry: a gRPC client
that is not the gateway gets INVALID_ARGUMENT naming the field, never a database error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_status import rpc_status

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.errors import FieldViolation, StatusDetails, decode_status
from crucible_common.inputs import MAX_JSON_DEPTH, NUL, TOO_DEEP
from crucible_common.protobuf import struct

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceAsyncStub

pytestmark = pytest.mark.integration


async def _refusal(call: Any) -> StatusDetails:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    error = info.value
    return decode_status(error.code(), error.details() or "", rpc_status.from_call(error))


async def test_a_nul_in_any_field_is_invalid_argument_naming_it(spec_stub: SpecServiceAsyncStub) -> None:
    refused = await _refusal(spec_stub.CreateProject(pb.CreateProjectRequest(title="Grid\x00", description="ok")))

    assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert refused.field_violations == [FieldViolation("title", NUL)]
    listed = await spec_stub.ListProjects(pb.ListProjectsRequest(page_size=1000))
    assert all("\x00" not in p.title for p in listed.projects)


async def test_a_nul_in_a_struct_and_a_struct_too_deep_are_refused(spec_stub: SpecServiceAsyncStub) -> None:
    project = (await spec_stub.CreateProject(pb.CreateProjectRequest(title="Checks"))).project
    session = (
        await spec_stub.CreateChatSession(
            pb.CreateChatSessionRequest(project_id=project.id, mode=pb.CHAT_SESSION_MODE_SETUP)
        )
    ).chat_session
    deep: dict[str, Any] = {}
    for _ in range(MAX_JSON_DEPTH):
        deep = {"a": deep}

    nul = await _refusal(
        spec_stub.CreateChatMessage(
            pb.CreateChatMessageRequest(
                chat_session_id=session.id, role=pb.MESSAGE_ROLE_USER, content="hi", metadata=struct({"k": "\x00"})
            )
        )
    )
    too_deep = await _refusal(
        spec_stub.CreateChatMessage(
            pb.CreateChatMessageRequest(
                chat_session_id=session.id, role=pb.MESSAGE_ROLE_USER, content="hi", metadata=struct(deep)
            )
        )
    )

    assert nul.field_violations == [FieldViolation("metadata.k", NUL)]
    assert too_deep.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.description for v in too_deep.field_violations] == [TOO_DEEP]
    messages = await spec_stub.ListChatMessages(pb.ListChatMessagesRequest(chat_session_id=session.id))
    assert list(messages.chat_messages) == []
