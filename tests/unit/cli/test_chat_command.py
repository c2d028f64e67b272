"""``crucible chat`` against the in-process gateway over the fake spec service."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result
from websockets.exceptions import ConnectionClosedError

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_cli import chat
from crucible_cli.main import app
from crucible_common.errors import FailedPrecondition
from crucible_common.protobuf import struct, timestamp
from tests.unit.gateway.fakes import (
    CREATED,
    PROJECT_ID,
    RUN_ID,
    SESSION_ID,
    Fakes,
    FakeTurn,
    chat_message,
    chat_session,
    rpc_error,
    turn_events,
    turn_messages,
)

RECOMMENDATION_ID = "a5"
READY = {
    "version": 1,
    "recommendation_id": "7d4f0c55-6a0e-4f43-9a53-3ad1b6f4c1e2",
    "project_id": PROJECT_ID,
    "chat_session_id": SESSION_ID,
    "source_message_id": "m4",
    "generated_at": "2025-01-02T03:05:06+00:00",
    "expires_at": "2025-01-02T03:20:06+00:00",
    "status": "ready",
    "mode": "full_search",
    "parameters": {
        "num_candidates": 5,
        "num_scenarios": 3,
        "seed_candidate_ids": [],
        "budget_tokens": None,
        "budget_usd": 2.5,
        "max_runtime_s": None,
    },
    "prerequisites": {"problem_spec": True, "world_model": True, "seed_candidates": True},
    "estimated_cost": {"tokens": 120000, "usd": 0.12},
    "rationale": "5 candidates × 3 scenarios = 15 evaluations.",
    "notes": ["the estimate assumes list prices"],
    "blockers": [],
    "blocker_details": [],
}
BLOCKED = {
    **READY,
    "status": "blocked",
    "prerequisites": {"problem_spec": True, "world_model": False, "seed_candidates": True},
    "estimated_cost": {"tokens": 120000, "usd": None},
    "blockers": ["missing_world_model"],
    "blocker_details": [
        {"code": "missing_world_model", "message": "The project has no WorldModel yet: describe it.", "field": ""},
        {"code": "validation_error", "message": "1 to 50", "field": "parameters.num_candidates"},
    ],
    "warnings": ["high_budget"],
}
SUMMARY = {
    "run_id": RUN_ID,
    "project_id": PROJECT_ID,
    "mode": "full_search",
    "status": "COMPLETED",
    "started_at": "2025-01-02T03:04:05+00:00",
    "completed_at": "2025-01-02T03:05:06+00:00",
    "duration_seconds": 61.0,
    "counts": {"candidates": 5, "scenarios": 3, "evaluations": 15},
    "top_candidates": [
        {"candidate_id": "c-1", "label": "Battery buffer", "I": 3.0, "P": 0.75, "R": 0.25, "notes": "promising"}
    ],
    "links": {"results_view": f"/runs/{RUN_ID}"},
    "summary_label": f"Run {RUN_ID[:8]} summary",
}


REJECTION = {
    "candidate_id": "c-2",
    "title": "Diesel backup",
    "evaluations": 3,
    "violated_constraints": [{"constraint": "safety", "weight": 100, "scenarios": 3}],
}


class InProcessSocket:
    """The chat CLI's socket over the in-process gateway's WebSocket."""

    def __init__(self, client: TestClient, url: str) -> None:
        self._session = client.websocket_connect(url)
        self._ws = self._session.__enter__()

    def send(self, message: str) -> None:
        self._ws.send_text(message)

    def recv(self) -> str:
        return self._ws.receive_text()

    def close(self) -> None:
        self._session.__exit__(None, None, None)


@pytest.fixture
def gateway(rest_gateway: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(chat, "_connect", lambda url, headers: InProcessSocket(rest_gateway, url))
    return rest_gateway


def crucible(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["chat", *args], input=stdin)


def flat(text: str) -> str:
    """The output without panel borders and line breaks: what a panel says, whatever the width."""
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text)).strip()


# Sessions besides the fakes' own (ids are UUIDs: the gateway refuses any other).
SETUP_SESSION_ID = "5e7a1c2d-0b3f-4d6e-8a9b-1c2d3e4f5a6b"
OLDER_SESSION_ID = "6f8b2d3e-1c4a-4e7f-9b0c-2d3e4f5a6b7c"


def answer_turn(fakes: Fakes, metadata: dict[str, Any], reply: str = "I cannot start runs.") -> None:
    user, agent = turn_messages(reply, metadata)
    fakes.spec.answer("CreateChatTurn", spec_pb.CreateChatTurnResponse(user_message=user, agent_message=agent))


def requests_of(fakes: Fakes, method: str) -> list[Any]:
    return [c.request for c in fakes.spec.calls if c.method == method]


def analysis_session_first(fakes: Fakes) -> None:
    setup = chat_session()
    setup.id, setup.mode = SETUP_SESSION_ID, spec_pb.CHAT_SESSION_MODE_SETUP
    older = chat_session()
    older.id = OLDER_SESSION_ID
    fakes.spec.answer(
        "ListChatSessions", spec_pb.ListChatSessionsResponse(chat_sessions=[chat_session(), setup, older])
    )


# ---------------------------------------------------------------- one turn: --message


def test_a_message_prints_the_reply(fakes: Fakes, gateway: TestClient) -> None:
    analysis_session_first(fakes)

    result = crucible(PROJECT_ID, "--message", "What is missing?")

    assert result.exit_code == 0, result.output
    assert "architect> Hello" in result.stdout
    (turn,) = requests_of(fakes, "CreateChatTurn")
    # The project's latest setup session, as the run service finds it for its summaries.
    assert (turn.chat_session_id, turn.content) == (SETUP_SESSION_ID, "What is missing?")
    assert uuid.UUID(turn.chat_message_id).version == 4
    assert requests_of(fakes, "CreateChatSession") == []
    assert fakes.spec.calls[-1].timeout == 900.0


def test_a_message_as_json_is_the_turns_api_json(fakes: Fakes, gateway: TestClient) -> None:
    answer_turn(fakes, {"recommended_run_config": READY})

    result = crucible(PROJECT_ID, "--mode", "analysis", "-m", "Run it", "--format", "json")

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed) == {"user_message", "agent_message"}
    assert printed == gateway.post(f"/api/chat-sessions/{SESSION_ID}/turns", json={"content": "Run it"}).json()
    assert printed["agent_message"]["metadata"]["recommended_run_config"]["status"] == "ready"
    assert requests_of(fakes, "CreateChatTurn")[0].chat_session_id == SESSION_ID


def test_a_project_without_a_session_of_the_mode_gets_one(fakes: Fakes, gateway: TestClient) -> None:
    fakes.spec.answer("ListChatSessions", spec_pb.ListChatSessionsResponse())

    result = crucible(PROJECT_ID, "-m", "hi")

    assert result.exit_code == 0, result.output
    assert requests_of(fakes, "CreateChatSession") == [
        spec_pb.CreateChatSessionRequest(
            project_id=PROJECT_ID, title="setup chat", mode=spec_pb.CHAT_SESSION_MODE_SETUP
        )
    ]
    assert f"new setup chat session {SESSION_ID}" in result.stderr


def test_a_session_of_another_project_is_refused(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("another-project", "--session", SESSION_ID, "-m", "hi")

    assert result.exit_code == 1
    assert f"chat session {SESSION_ID} is not one of project another-project" in result.stderr
    assert requests_of(fakes, "CreateChatTurn") == []


def test_a_failed_turn_prints_the_problem_and_exits_1(fakes: Fakes, gateway: TestClient) -> None:
    fakes.spec.fail("CreateChatTurn", rpc_error(FailedPrecondition("the model did not answer", reason="NO_ANSWER")))

    result = crucible(PROJECT_ID, "--session", SESSION_ID, "-m", "hi")

    assert result.exit_code == 1
    assert "412 NO_ANSWER: the model did not answer" in result.stderr


def test_json_needs_a_message(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible(PROJECT_ID, "--format", "json")

    assert result.exit_code == 2
    assert fakes.calls() == []


# ---------------------------------------------------------------- the panels


def test_a_ready_recommendation_is_a_panel_and_the_command_that_would_start_it(
    fakes: Fakes, gateway: TestClient
) -> None:
    answer_turn(fakes, {"architect": {"intent": "run_request"}, "recommended_run_config": READY})

    result = crucible(PROJECT_ID, "--session", SESSION_ID, "-m", "Run it")

    assert result.exit_code == 0, result.output
    said = flat(result.stdout)
    assert "architect> I cannot start runs. Run recommendation status ready mode full_search" in said
    assert "parameters 5 candidates, 3 scenarios, budget $2.5" in said
    assert "estimated cost $0.1200, 120000 tokens" in said
    assert "prerequisites problem_spec ✔, world_model ✔, seed_candidates ✔" in said
    assert "expires 2025-01-02 03:20:06" in said
    assert "5 candidates × 3 scenarios = 15 evaluations. · the estimate assumes list prices" in said
    assert chat.NO_RUN_FROM_CHAT in said
    # Unwrapped below the panel, to be copied whole.
    assert "to start it yourself:" in said
    assert (
        f"crucible run start {PROJECT_ID} --mode full_search --candidates 5 --scenarios 3 --budget-usd 2.5 "
        f"--chat-session-id {SESSION_ID} --recommended-message-id {RECOMMENDATION_ID}"
    ) in result.stdout.splitlines()


def test_a_blocked_recommendation_names_each_blocker_and_offers_no_command(fakes: Fakes, gateway: TestClient) -> None:
    answer_turn(fakes, {"recommended_run_config": BLOCKED}, reply="A run is blocked right now.")

    result = crucible(PROJECT_ID, "--session", SESSION_ID, "-m", "Run it")

    assert result.exit_code == 0, result.output
    said = flat(result.stdout)
    assert "status blocked" in said
    assert "estimated cost unpriced, 120000 tokens" in said
    assert "world_model ✘" in said
    assert "✘ missing_world_model: The project has no WorldModel yet: describe it." in said
    assert "✘ validation_error (parameters.num_candidates): 1 to 50" in said
    assert "! high_budget" in said
    assert chat.NO_RUN_FROM_CHAT in said
    assert "crucible run start" not in said.replace(chat.NO_RUN_FROM_CHAT, "")
    assert "to start it yourself" not in said


def test_history_shows_the_last_messages_and_summaries_as_panels(fakes: Fakes, gateway: TestClient) -> None:
    summary = spec_pb.ChatMessage(
        id="m9",
        chat_session_id=SESSION_ID,
        sequence=9,
        role=spec_pb.MESSAGE_ROLE_AGENT,
        content="**Run 5a5cbf13 summary** (full_search): completed",
        metadata=struct(
            {
                "run_summary": SUMMARY,
                # What is not shaped as the run service writes it is left out, not a crash.
                "run_rejections": [REJECTION, {"title": "x", "evaluations": "3", "violated_constraints": []}, "junk"],
            }
        ),
        create_time=timestamp(CREATED),
    )
    first, second = chat_message(spec_pb.MESSAGE_ROLE_USER), chat_message()
    first.content, second.content = "first page", "dropped"
    fakes.spec.answer(
        "ListChatMessages", spec_pb.ListChatMessagesResponse(chat_messages=[first, second, chat_message(), summary])
    )

    result = crucible(PROJECT_ID, "--session", SESSION_ID, "--history", "2", "-m", "hi")

    assert result.exit_code == 0, result.output
    said = flat(result.stdout)
    assert "first page" not in said
    assert "dropped" not in said
    assert "architect> hello" in said
    assert f"Run {RUN_ID[:8]} summary" in said
    assert "(full_search): completed" not in said
    assert f"run {RUN_ID} mode full_search status COMPLETED duration 61.0 s" in said
    assert "5 candidates × 3 scenarios, 15 evaluations" in said
    assert "1 Battery buffer 3.00 0.75 0.25 c-1 promising" in said
    assert "rejected: Diesel backup, broke safety in 3 of 3 scenarios" in said
    assert f"results: crucible run results {RUN_ID} · /runs/{RUN_ID}" in said
    assert requests_of(fakes, "ListChatMessages") == [
        spec_pb.ListChatMessagesRequest(chat_session_id=SESSION_ID, page_size=1000)
    ]


# ---------------------------------------------------------------- interactive


def test_a_conversation_streams_each_reply_and_starts_over_on_a_retry(fakes: Fakes, gateway: TestClient) -> None:
    _, agent = turn_messages("I cannot start runs.", {"recommended_run_config": READY})
    restarted = turn_events("I can", None, "I cannot", " start runs.")
    restarted[-1] = spec_pb.StreamChatTurnResponse(agent_message=agent)
    fakes.spec.turns = [FakeTurn(restarted), FakeTurn()]

    result = crucible(PROJECT_ID, "--session", SESSION_ID, stdin="Run it\n\nthanks\n/quit\nnever sent\n")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "architect> I can\n(the model was retried: the reply starts over)\narchitect> I cannot start runs.\n" in out
    assert "Run recommendation" in out
    assert "architect> Hello\n" in out
    turns = requests_of(fakes, "StreamChatTurn")
    assert [t.content for t in turns] == ["Run it", "thanks"]
    assert turns[0].chat_message_id != turns[1].chat_message_id


def test_a_failed_turn_is_said_and_retry_sends_it_again_under_the_same_id(fakes: Fakes, gateway: TestClient) -> None:
    broken = rpc_error(FailedPrecondition("the model did not answer", reason="NO_ANSWER"))
    fakes.spec.turns = [FakeTurn(turn_events("Hel")[:2], failure=broken), FakeTurn()]

    result = crucible(PROJECT_ID, "--session", SESSION_ID, stdin="Run it\n/retry\n/retry\n")

    assert result.exit_code == 0, result.output
    assert "architect> Hel\nerror: 412 NO_ANSWER: the model did not answer\n(/retry sends it again)" in result.stdout
    assert "architect> Hello" in result.stdout
    assert "no failed turn to send again" in result.stdout
    first, again = requests_of(fakes, "StreamChatTurn")
    assert (again.content, again.chat_message_id) == (first.content, first.chat_message_id)


def test_end_of_input_leaves_without_a_turn(fakes: Fakes, gateway: TestClient) -> None:
    fakes.spec.answer("ListChatMessages", spec_pb.ListChatMessagesResponse(chat_messages=[chat_message()]))

    result = crucible(PROJECT_ID, "--session", SESSION_ID, "--history", "1", stdin="")

    assert result.exit_code == 0, result.output
    assert "Chatting with the Architect" in result.stdout
    assert "architect> hello" in result.stdout
    assert requests_of(fakes, "StreamChatTurn") == []


class DroppingSocket:
    """A connection that answers with its frames, then drops."""

    def __init__(self, frames: list[dict[str, Any]], sent: list[str]) -> None:
        self.frames = [json.dumps(f) for f in frames]
        self.sent = sent

    def send(self, message: str) -> None:
        self.sent.append(message)

    def recv(self) -> str:
        if not self.frames:
            raise ConnectionClosedError(None, None)
        return self.frames.pop(0)

    def close(self) -> None:
        return None


def test_a_dropped_connection_sends_the_turn_again_under_the_same_id(
    fakes: Fakes, rest_gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = {"id": "a5", "chat_session_id": SESSION_ID, "content": "Hello", "metadata": {}}
    sent: list[str] = []
    sockets = [
        DroppingSocket([{"type": "reply.delta", "text": "Hel", "restart": False}], sent),
        DroppingSocket(
            [{"type": "reply.delta", "text": "Hello", "restart": False}, {"type": "agent_message", "message": message}],
            sent,
        ),
    ]
    urls: list[str] = []

    def connect(url: str, headers: dict[str, str]) -> DroppingSocket:
        urls.append(url)
        return sockets.pop(0)

    monkeypatch.setattr(chat, "_connect", connect)

    result = crucible(PROJECT_ID, "--session", SESSION_ID, stdin="hi\n")

    assert result.exit_code == 0, result.output
    assert (
        "architect> Hel\n(the connection dropped; asking again: the reply starts over)\narchitect> Hello\n"
        in result.stdout
    )
    assert urls == [f"ws://gateway/api/ws/chat-sessions/{SESSION_ID}"] * 2
    assert len(sent) == 2
    assert sent[0] == sent[1]
    assert json.loads(sent[0])["content"] == "hi"


def test_a_connection_that_keeps_dropping_ends_the_session(
    fakes: Fakes, rest_gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(chat, "_connect", lambda url, headers: DroppingSocket([], sent))

    result = crucible(PROJECT_ID, "--session", SESSION_ID, stdin="hi\n")

    assert result.exit_code == 1
    assert f"lost the connection to the gateway {chat.RECONNECTS + 1} times" in result.stderr
    assert len(sent) == chat.RECONNECTS + 1


def test_an_unreachable_chat_is_said(fakes: Fakes, rest_gateway: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, headers: dict[str, str]) -> DroppingSocket:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(chat, "_connect", refuse)

    result = crucible(PROJECT_ID, "--session", SESSION_ID, stdin="hi\n")

    assert result.exit_code == 1
    assert f"cannot reach the chat at ws://gateway/api/ws/chat-sessions/{SESSION_ID}" in result.stderr


def test_an_unchecked_recommendation_is_information_without_a_cost(fakes: Fakes, gateway: TestClient) -> None:
    info = {
        "status": "info",
        "mode": None,
        "parameters": {"num_candidates": 4, "num_scenarios": 2},
        "prerequisites": {},
        "estimated_cost": {"tokens": None, "usd": None},
        "notes": ["The run service could not check this configuration; the Run Config panel will."],
        "blockers": [],
        "blocker_details": [],
    }
    answer_turn(fakes, {"recommended_run_config": info})

    result = crucible(PROJECT_ID, "--session", SESSION_ID, "-m", "Run it")

    assert result.exit_code == 0, result.output
    said = flat(result.stdout)
    assert "status info parameters 4 candidates, 2 scenarios · The run service could not check" in said
    assert "estimated cost" not in said
    assert "unpriced" not in said
    assert "to start it yourself" not in said
