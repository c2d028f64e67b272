"""/api/projects/{id}/chat-sessions and /api/chat-sessions/{id}/messages over the fake spec service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.protobuf import struct
from tests.unit.gateway.conftest import assert_refused
from tests.unit.gateway.fakes import PROJECT_ID, SESSION_ID, Fakes

SESSIONS = f"/api/projects/{PROJECT_ID}/chat-sessions"
MESSAGES = f"/api/chat-sessions/{SESSION_ID}/messages"

INVALID = [
    pytest.param("POST", SESSIONS, {"json": {"mode": "sideways"}}, "mode", id="session-unknown-mode"),
    pytest.param("POST", SESSIONS, {"json": {"mode": "SETUP"}}, "mode", id="session-mode-in-proto-spelling"),
    pytest.param("POST", SESSIONS, {"json": {"mode": 1}}, "mode", id="session-mode-as-number"),
    pytest.param("POST", SESSIONS, {"json": {"topic": "x"}}, "topic", id="session-unknown-field"),
    pytest.param("GET", f"{SESSIONS}?page_size=-1", {}, "query.page_size", id="sessions-negative-page-size"),
    pytest.param("POST", MESSAGES, {"json": {"role": "robot", "content": "x"}}, "role", id="message-unknown-role"),
    pytest.param("POST", MESSAGES, {"json": {"role": "user"}}, "content", id="message-without-content"),
    pytest.param(
        "POST", MESSAGES, {"json": {"role": "user", "content": "x", "metadata": [1]}}, "metadata", id="metadata-list"
    ),
    pytest.param("GET", f"{MESSAGES}?page_token={'t' * 1025}", {}, "query.page_token", id="messages-long-token"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "field"), INVALID)
async def test_invalid_input_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str | None
) -> None:
    assert_refused(await http.request(method, url, **kwargs), fakes, field)


@pytest.mark.parametrize(
    ("mode", "number"),
    [("setup", spec_pb.CHAT_SESSION_MODE_SETUP), ("analysis", spec_pb.CHAT_SESSION_MODE_ANALYSIS)],
)
async def test_create_session_sends_the_mode_number(
    fakes: Fakes, http: httpx.AsyncClient, mode: str, number: spec_pb.ChatSessionMode.ValueType
) -> None:
    response = await http.post(SESSIONS, json={"title": "setup", "mode": mode})

    assert response.status_code == 201
    assert response.json()["mode"] == "analysis"
    assert fakes.spec.only_call().request == spec_pb.CreateChatSessionRequest(
        project_id=PROJECT_ID, title="setup", mode=number
    )


async def test_the_mode_defaults_to_setup(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.post(SESSIONS, json={})

    assert fakes.spec.only_call().request == spec_pb.CreateChatSessionRequest(
        project_id=PROJECT_ID, mode=spec_pb.CHAT_SESSION_MODE_SETUP
    )


async def test_list_and_get_sessions(fakes: Fakes, http: httpx.AsyncClient) -> None:
    listed = (await http.get(SESSIONS, params={"page_size": 5})).json()
    got = (await http.get(f"/api/chat-sessions/{SESSION_ID}")).json()

    assert [s["id"] for s in listed["chat_sessions"]] == [SESSION_ID]
    assert got["project_id"] == PROJECT_ID
    assert [c.request for c in fakes.spec.calls] == [
        spec_pb.ListChatSessionsRequest(project_id=PROJECT_ID, page_size=5),
        spec_pb.GetChatSessionRequest(chat_session_id=SESSION_ID),
    ]


@pytest.mark.parametrize(
    ("role", "number"),
    [
        ("user", spec_pb.MESSAGE_ROLE_USER),
        ("agent", spec_pb.MESSAGE_ROLE_AGENT),
        ("system", spec_pb.MESSAGE_ROLE_SYSTEM),
    ],
)
async def test_create_message_sends_the_role_number(
    fakes: Fakes, http: httpx.AsyncClient, role: str, number: spec_pb.MessageRole.ValueType
) -> None:
    response = await http.post(MESSAGES, json={"role": role, "content": "#1", "metadata": {"n": 1}})

    assert response.status_code == 201
    assert fakes.spec.only_call().request == spec_pb.CreateChatMessageRequest(
        chat_session_id=SESSION_ID, role=number, content="#1", metadata=struct({"n": 1})
    )


@pytest.mark.parametrize("key", ["recommended_run_config", "run_summary", "run_rejections", "architect"])
async def test_a_message_cannot_pass_for_crucible_s_own(fakes: Fakes, http: httpx.AsyncClient, key: str) -> None:
    """An Architect's recommendation, a run's summary: written by Crucible alone. Posted by a client,
    a recommendation would be taken for the Architect's by the run it starts (and its lineage)."""
    body = {"role": "agent", "content": "I recommend…", "metadata": {key: {"mode": "full_search"}, "n": 1}}

    response = await http.post(MESSAGES, json=body)

    assert response.status_code == 400, response.text
    (violation,) = response.json()["field_violations"]
    assert violation["field"] == "metadata"
    assert key in violation["description"]
    assert fakes.calls() == []


async def test_list_messages_renders_roles_and_metadata(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(MESSAGES, params={"page_token": "tok"})

    body = response.json()
    assert body["next_page_token"] == "more"
    assert [(m["sequence"], m["role"], m["metadata"]) for m in body["chat_messages"]] == [(3, "agent", {"n": 2})]
    assert fakes.spec.only_call().request == spec_pb.ListChatMessagesRequest(
        chat_session_id=SESSION_ID, page_token="tok"
    )
