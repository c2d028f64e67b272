"""A chat turn with the Architect, on fakes: what is stored, applied, recommended and streamed."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from crucible_common.errors import CrucibleError, InvalidArgument
from crucible_spec.domain.architect import (
    ArchitectIntent,
    RunWish,
    SpecPatch,
    WorldPatch,
)
from crucible_spec.domain.errors import ArchitectUnavailable, ChatMessageIdTaken
from crucible_spec.domain.model import (
    ActorKind,
    ChatMessage,
    ChatSessionMode,
    Constraint,
    Goal,
    MessageRole,
    RunMode,
)
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer import handlers as h
from crucible_spec.service_layer.architect import (
    ArchitectAnswer,
    RunDigest,
)
from crucible_spec.service_layer.chat_turns import ChatTurn, TurnDeps, chat_turn
from tests.unit.spec.fakes import FakeAdvisor, FakeSpecRepository, FakeUnitOfWork, ScriptedArchitect

DESCRIBED = ArchitectAnswer(
    reply="I noted the budget and the traffic goal.",
    intent=ArchitectIntent.REFINE,
    spec_patch=SpecPatch(
        constraints=(Constraint("budget", "The budget must stay under one million.", 100),),
        goals=(Goal("carry traffic across the river"),),
    ),
    world_patch=WorldPatch({"actors": ({"name": "commuters", "description": "cross daily"},)}),
    run_wish=None,
    llm_call_id="call-1",
    provider="openai",
    model="gpt-4o-mini",
)
RUN_PLEASE = replace(
    DESCRIBED,
    reply="Here is what I would run.",
    intent=ArchitectIntent.RUN_REQUEST,
    spec_patch=None,
    world_patch=None,
    run_wish=RunWish(RunMode.FULL_SEARCH, 4, 3, "a small first search"),
)


class Turns:
    def __init__(self, *answers: ArchitectAnswer | CrucibleError, advisor_down: bool = False) -> None:
        self.repo = FakeSpecRepository()
        self.architect = ScriptedArchitect(*answers)
        self.advisor = FakeAdvisor(self.repo, down=advisor_down)
        self.deps = TurnDeps(
            uow=lambda: FakeUnitOfWork(self.repo),
            read_uow=lambda: FakeUnitOfWork(self.repo),
            architect=self.architect,
            runs=self.advisor,
        )
        self.events: list[tuple[str, object]] = []

    async def session(self, mode: ChatSessionMode = ChatSessionMode.SETUP) -> str:
        project = await h.create_project(c.CreateProject("Bridge"), FakeUnitOfWork(self.repo))
        session = await h.create_chat_session(c.CreateChatSession(project.id, mode, "chat"), FakeUnitOfWork(self.repo))
        return session.id

    async def turn(self, session_id: str, content: str, message_id: str = "") -> ChatTurn:
        async def user(message: ChatMessage) -> None:
            self.events.append(("user", message.id))

        async def delta(text: str, restart: bool) -> None:
            self.events.append(("restart" if restart else "delta", text))

        return await chat_turn(
            c.CreateChatTurn(session_id, content, message_id), self.deps, on_user_message=user, on_delta=delta
        )

    def messages(self, session_id: str) -> list[ChatMessage]:
        return [m for m in self.repo.tables.chat_messages if m.chat_session_id == session_id]


async def test_a_described_problem_fills_both_parts_with_provenance_naming_the_architect() -> None:
    t = Turns(DESCRIBED)
    session_id = await t.session()

    turn = await t.turn(session_id, "The budget must stay under one million. Commuters cross daily.")

    project_id = t.repo.tables.chat_sessions[session_id].project_id
    spec = t.repo.tables.problem_specs[project_id]
    assert spec.constraints == (Constraint("budget", "The budget must stay under one million.", 100),)
    assert spec.goals == (Goal("carry traffic across the river"),)
    assert t.repo.tables.world_models[project_id].model_data["actors"] == [
        {"name": "commuters", "description": "cross daily"}
    ]
    entries = [entry for _, entry in t.repo.tables.provenance]
    assert {e.actor.kind for e in entries} == {ActorKind.ARCHITECT}
    assert all(e.chat_message_id == turn.user_message.id for e in entries)
    assert all("The budget must stay under one million" in e.reason for e in entries)

    assert [m.role for m in t.messages(session_id)] == [MessageRole.USER, MessageRole.AGENT]
    assert turn.agent_message.content == DESCRIBED.reply
    architect = turn.agent_message.metadata["architect"]
    assert architect["intent"] == "refine"
    assert architect["in_reply_to"] == turn.user_message.id
    assert architect["applied"]["problem_spec"] == {"version": 1, "changed": ["constraints", "goals"]}
    assert architect["applied"]["world_model"]["version"] == 1
    assert "recommended_run_config" not in turn.agent_message.metadata
    # The stored user message first, then the reply as it was written.
    assert t.events[0] == ("user", turn.user_message.id)
    assert "".join(str(text) for kind, text in t.events if kind == "delta") == DESCRIBED.reply


async def test_the_architect_sees_the_project_and_the_conversation_so_far() -> None:
    t = Turns(DESCRIBED, replace(DESCRIBED, spec_patch=None, world_patch=None))
    session_id = await t.session()
    await t.turn(session_id, "first")

    await t.turn(session_id, "second")

    request = t.architect.requests[1]
    assert request.message == "second"
    assert [line.content for line in request.history] == ["first", DESCRIBED.reply]
    assert request.problem_spec is not None
    assert request.problem_spec.constraints[0].weight == 100
    assert request.world_model is not None
    assert request.runs == ()


async def test_a_wish_to_run_is_a_recommendation_checked_by_preflight_and_ends_with_the_contract() -> None:
    t = Turns(DESCRIBED, RUN_PLEASE)
    session_id = await t.session()
    await t.turn(session_id, "describe")
    runs_before = len(t.advisor.preflights)

    turn = await t.turn(session_id, "Let's run it with 4 candidates and 3 scenarios")

    assert t.advisor.preflights[runs_before:] == [(RunMode.FULL_SEARCH, 4, 3)]
    config = turn.agent_message.metadata["recommended_run_config"]
    assert config["status"] == "ready"
    assert config["version"] == 1
    assert config["project_id"] == t.repo.tables.chat_sessions[session_id].project_id
    assert config["chat_session_id"] == session_id
    assert config["source_message_id"] == turn.user_message.id
    assert config["mode"] == "full_search"
    assert config["parameters"] == {"num_candidates": 4, "num_scenarios": 3}
    assert config["prerequisites"]["problem_spec"] is True
    assert config["estimated_cost"] == {"tokens": 12_000, "usd": 0.0123}
    assert config["blockers"] == []
    assert config["rationale"] == "a small first search"
    assert config["expires_at"] > config["generated_at"]
    uuid.UUID(config["recommendation_id"])
    content = turn.agent_message.content
    assert content.startswith("Here is what I would run.")
    assert "I cannot start runs myself" in content
    assert "Run button" in content
    # The contract streams too, after the model's words.
    assert "".join(str(text) for kind, text in t.events if kind == "delta").endswith(content.split("\n\n", 1)[1])


async def test_a_wish_to_run_without_prerequisites_is_blocked_and_says_what_is_missing() -> None:
    t = Turns(RUN_PLEASE)
    session_id = await t.session()

    turn = await t.turn(session_id, "run it now")

    config = turn.agent_message.metadata["recommended_run_config"]
    assert config["status"] == "blocked"
    assert config["blockers"] == ["missing_problem_spec", "missing_world_model"]
    assert [d["message"] for d in config["blocker_details"]] == [
        "The project has no ProblemSpec yet: describe it.",
        "The project has no WorldModel yet: describe it.",
    ]
    assert "This run cannot start yet" in turn.agent_message.content
    assert "The project has no WorldModel yet: describe it." in turn.agent_message.content


async def test_without_the_run_service_a_recommendation_is_information_only() -> None:
    t = Turns(RUN_PLEASE, advisor_down=True)
    session_id = await t.session()

    turn = await t.turn(session_id, "run it")

    config = turn.agent_message.metadata["recommended_run_config"]
    assert config["status"] == "info"
    assert config["estimated_cost"] == {"tokens": None, "usd": None}
    assert any("could not check" in note for note in config["notes"])


async def test_a_model_failure_keeps_the_users_message_and_changes_nothing_else() -> None:
    t = Turns(ArchitectUnavailable("provider down"), DESCRIBED)
    session_id = await t.session()
    message_id = str(uuid.uuid4())

    with pytest.raises(ArchitectUnavailable) as failed:
        await t.turn(session_id, "The budget must stay under one million.", message_id)

    assert failed.value.metadata["chat_message_id"] == message_id
    assert [m.id for m in t.messages(session_id)] == [message_id]
    assert t.repo.tables.problem_specs == {}
    assert t.repo.tables.provenance == []

    # Sent again: the same user message, answered this time.
    turn = await t.turn(session_id, "The budget must stay under one million.", message_id)
    assert turn.user_message.id == message_id
    assert [m.role for m in t.messages(session_id)] == [MessageRole.USER, MessageRole.AGENT]


async def test_a_turn_sent_again_is_not_answered_twice() -> None:
    t = Turns(DESCRIBED)
    session_id = await t.session()
    message_id = str(uuid.uuid4())

    first = await t.turn(session_id, "hello", message_id)
    again = await t.turn(session_id, "hello", message_id)

    assert again == first
    assert len(t.architect.requests) == 1
    assert len(t.messages(session_id)) == 2
    with pytest.raises(ChatMessageIdTaken) as taken:
        await t.turn(session_id, "something else", message_id)
    # Of this very session: not blamed on another one.
    assert "of this session" in taken.value.message


async def test_a_patch_that_does_not_validate_is_left_out_whole_and_said_so() -> None:
    bad = replace(DESCRIBED, spec_patch=SpecPatch(constraints=(Constraint("x" * 300, "", 100),)))
    t = Turns(bad)
    session_id = await t.session()

    turn = await t.turn(session_id, "describe")

    project_id = t.repo.tables.chat_sessions[session_id].project_id
    assert project_id not in t.repo.tables.problem_specs
    assert project_id in t.repo.tables.world_models
    architect = turn.agent_message.metadata["architect"]
    assert architect["applied"]["problem_spec"] is None
    assert [r["subject"] for r in architect["rejected"]] == ["problem_spec"]


async def test_an_analysis_session_tells_the_architect_about_the_runs() -> None:
    t = Turns(replace(DESCRIBED, spec_patch=None, world_patch=None, intent=ArchitectIntent.QUESTION))
    digest = RunDigest("run-1", "full_search", "COMPLETED", datetime.now(UTC), 3, 2, 6, 0, ())
    t.advisor.runs = (digest,)
    session_id = await t.session(ChatSessionMode.ANALYSIS)

    await t.turn(session_id, "Which candidate won?")

    assert t.architect.requests[0].runs == (digest,)


@pytest.mark.parametrize(("content", "field"), [("", "content"), ("x" * 20_001, "content")])
async def test_an_empty_or_huge_message_is_refused_before_anything_is_stored(content: str, field: str) -> None:
    t = Turns(DESCRIBED)
    session_id = await t.session()

    with pytest.raises(InvalidArgument) as refused:
        await t.turn(session_id, content)

    assert [v.field for v in refused.value.violations] == [field]
    assert t.messages(session_id) == []
