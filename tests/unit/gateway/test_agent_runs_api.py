"""/api/agent-runs, /api/usage and /api/llm-calls over the fake agent service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible_common.errors import NotFound
from crucible_common.protobuf import struct
from tests.unit.gateway.conftest import assert_refused
from tests.unit.gateway.fakes import (
    AGENT_RUN_ID,
    PROJECT_ID,
    RUN_ID,
    SPRINT_ID,
    Fakes,
    agent_run_result,
    llm_call,
    rpc_error,
    usage,
)

RUNS = "/api/agent-runs"
LONG_ID = "i" * 101
CALL_ID = "5b0e1f8a-0c8e-4a53-9a4c-4f3c6b1d2e7a"

INVALID = [
    pytest.param("POST", RUNS, {"json": {}}, "message", id="create-without-message"),
    pytest.param(
        "POST",
        RUNS,
        {"json": {"message": "x", "subagents": [{"provider": "mistral", "model_name": "m"}]}},
        "subagents[0].provider",
        id="unknown-provider",
    ),
    pytest.param(
        "POST",
        RUNS,
        {"json": {"message": "x", "subagents": [{"provider": "openai"}]}},
        "subagents[0].model_name",
        id="no-model",
    ),
    pytest.param(
        "POST",
        RUNS,
        {"json": {"message": "x", "history": [{"role": "tool", "content": "42"}]}},
        "history[0].role",
        id="history-tool-turn",
    ),
    pytest.param(
        "POST",
        RUNS,
        {"json": {"message": "x", "history": [{"role": "robot", "content": "hi"}]}},
        "history[0].role",
        id="history-unknown-role",
    ),
    pytest.param(
        "POST",
        RUNS,
        {"json": {"message": "x", "recording": {"mode": "off", "recording_key": "k"}}},
        "recording.mode",
        id="recording-mode-off",
    ),
    pytest.param(
        "POST",
        RUNS,
        {"json": {"message": "x", "judge": {"provider": "openai"}}},
        "judge.model_name",
        id="judge-no-model",
    ),
    pytest.param(
        "POST", RUNS, {"json": {"message": "x", "correlation": {"job_id": "j"}}}, "correlation.job_id", id="correlation"
    ),
    pytest.param("POST", RUNS, {"json": {"message": "x", "json_schema": []}}, "json_schema", id="schema-not-object"),
    pytest.param("GET", f"{RUNS}?project_id={LONG_ID}", {}, "query.project_id", id="list-long-project-id"),
    pytest.param("GET", f"{RUNS}?page_size=-5", {}, "query.page_size", id="list-negative-page-size"),
    pytest.param("POST", f"{RUNS}/{AGENT_RUN_ID}/fork", {"json": {"at": "start"}}, "at", id="fork-unknown-field"),
    pytest.param("GET", f"/api/usage?purpose={LONG_ID}", {}, "query.purpose", id="usage-long-purpose"),
    pytest.param("GET", f"/api/usage?agent_run_id={LONG_ID}", {}, "query.agent_run_id", id="usage-long-run-id"),
    pytest.param("GET", "/api/llm-calls?page_size=5000", {}, "query.page_size", id="calls-page-size"),
    pytest.param("GET", f"/api/llm-calls?sprint_id={LONG_ID}", {}, "query.sprint_id", id="calls-long-sprint-id"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "field"), INVALID)
async def test_invalid_input_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str | None
) -> None:
    assert_refused(await http.request(method, url, **kwargs), fakes, field)


async def test_create_builds_the_whole_request(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post(
        RUNS,
        json={
            "message": "write hello.py",
            "history": [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "ok"}],
            "subagents": [
                {"provider": "openai", "model_name": "gpt-x"},
                {"provider": "openai", "model_name": "gpt-y", "system_prompt": "terse"},
                {"name": "claude", "provider": "anthropic", "model_name": "claude-x"},
            ],
            "judge": {"provider": "anthropic", "model_name": "claude-x", "instructions": "pick"},
            "metadata": {"k": "v"},
            "correlation": {"project_id": PROJECT_ID, "purpose": "test"},
            "recording": {"mode": "replay", "recording_key": "rec-1"},
            "json_schema": {"type": "object"},
            "schema_name": "answer",
        },
    )

    assert response.status_code == 201, response.text
    call = fakes.agent.only_call()
    assert call.timeout == 900.0
    assert call.request == agent_pb.ExecuteAgentRunRequest(
        message="write hello.py",
        history=[
            agent_pb.Message(role=agent_pb.ROLE_SYSTEM, content="be brief"),
            agent_pb.Message(role=agent_pb.ROLE_ASSISTANT, content="ok"),
        ],
        subagents=[
            # Unnamed subagents are named after their provider.
            agent_pb.SubagentConfig(name="openai", provider="openai", model_name="gpt-x"),
            agent_pb.SubagentConfig(name="openai-2", provider="openai", model_name="gpt-y", system_prompt="terse"),
            agent_pb.SubagentConfig(name="claude", provider="anthropic", model_name="claude-x"),
        ],
        judge=agent_pb.JudgeConfig(provider="anthropic", model_name="claude-x", instructions="pick"),
        metadata=struct({"k": "v"}),
        correlation=agent_pb.Correlation(project_id=PROJECT_ID, purpose="test"),
        recording=agent_pb.Recording(mode=agent_pb.RECORDING_MODE_REPLAY, recording_key="rec-1"),
        json_schema=struct({"type": "object"}),
        schema_name="answer",
    )


async def test_a_minimal_run_leaves_the_options_unset(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.post(RUNS, json={"message": "hi"})

    request = fakes.agent.only_call().request
    assert isinstance(request, agent_pb.ExecuteAgentRunRequest)
    assert not request.HasField("judge")
    assert not request.HasField("recording")
    assert not request.HasField("json_schema")
    assert list(request.subagents) == []


async def test_the_result_renders_typed_candidate_metrics(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get(f"{RUNS}/{AGENT_RUN_ID}")).json()

    assert body["run"]["status"] == "completed"
    assert body["run"]["correlation"] == {
        "project_id": PROJECT_ID,
        "run_id": "",
        "sprint_id": "",
        "snapshot_test_id": "",
        "purpose": "test",
    }
    assert body["candidates"][0]["metrics"] == {
        "duration_ms": 1200,
        "input_tokens": 10,
        "output_tokens": 20,
        "usd": 0.0015,
        "attempts": 2,
        "response_model": "gpt-x-2025",
    }
    assert body["candidates"][0]["structured"] is None
    assert body["decision"]["candidate_name"] == "openai"
    assert [c["label"] for c in body["checkpoints"]] == ["start"]
    assert fakes.agent.only_call().request == agent_pb.GetAgentRunRequest(agent_run_id=AGENT_RUN_ID)


async def test_an_unpriced_candidate_has_a_null_cost(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.agent.answer("GetAgentRun", agent_pb.GetAgentRunResponse(result=agent_run_result(priced=False)))

    body = (await http.get(f"{RUNS}/{AGENT_RUN_ID}")).json()

    assert body["candidates"][0]["metrics"]["usd"] is None


async def test_list_filters_by_correlation(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get(RUNS, params={"sprint_id": SPRINT_ID, "page_size": 3, "page_token": "t"})).json()

    assert [r["id"] for r in body["agent_runs"]] == [AGENT_RUN_ID]
    assert body["next_page_token"] == "n"
    assert fakes.agent.only_call().request == agent_pb.ListAgentRunsRequest(
        filter=agent_pb.Correlation(sprint_id=SPRINT_ID), page_size=3, page_token="t"
    )


async def test_fork(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post(f"{RUNS}/{AGENT_RUN_ID}/fork", json={"checkpoint_label": "decision", "reason": "retry"})

    assert response.status_code == 201
    call = fakes.agent.only_call()
    assert call.timeout == 900.0
    assert call.request == agent_pb.ForkAgentRunRequest(
        agent_run_id=AGENT_RUN_ID, checkpoint_label="decision", reason="retry"
    )


async def test_usage_by_correlation(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/usage", params={"agent_run_id": AGENT_RUN_ID, "purpose": "interview"})).json()

    assert body["total"] == {
        "input_tokens": 30,
        "output_tokens": 60,
        "usd": 0.12345679,
        "calls": 3,
        "unpriced_calls": 1,
        "failed_calls": 0,
        "replayed_calls": 0,
        "cancelled_calls": 0,
    }
    assert [(m["provider"], m["priced"], m["usage"]["calls"]) for m in body["by_model"]] == [("openai", True, 2)]
    assert fakes.agent.only_call().request == agent_pb.GetUsageRequest(
        filter=agent_pb.Correlation(agent_run_id=AGENT_RUN_ID, purpose="interview")
    )


async def test_usage_grouped_by_project_and_run(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.agent.answer(
        "GetUsage",
        agent_pb.GetUsageResponse(
            total=usage(),
            groups=[
                agent_pb.UsageGroups(
                    dimension=agent_pb.USAGE_DIMENSION_RUN,
                    groups=[agent_pb.KeyedUsage(key="r1", usage=usage(2)), agent_pb.KeyedUsage(key="", usage=usage(1))],
                    truncated=True,
                )
            ],
        ),
    )

    body = (await http.get("/api/usage", params=[("group_by", "run"), ("group_by", "run"), ("group_limit", 2)])).json()
    unknown = await http.get("/api/usage", params={"group_by": "model"})
    too_many = await http.get("/api/usage", params={"group_limit": 1001})

    assert [(g["id"], g["priced"], g["usage"]["calls"]) for g in body["by_run"]] == [("r1", False, 2), ("", False, 1)]
    assert body["by_project"] is None
    assert body["truncated"] == ["run"]
    assert fakes.agent.only_call().request == agent_pb.GetUsageRequest(
        filter=agent_pb.Correlation(), group_by=[agent_pb.USAGE_DIMENSION_RUN], group_limit=2
    )
    assert unknown.status_code == 400
    assert too_many.status_code == 400


async def test_usage_of_a_run_says_how_many_of_its_calls_are_still_being_made(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    fakes.agent.answer("GetUsage", agent_pb.GetUsageResponse(total=usage(), calls_in_flight=4))

    body = (await http.get("/api/usage", params={"run_id": RUN_ID})).json()

    assert body["calls_in_flight"] == 4
    assert body["total"]["calls"] == 3


async def test_one_llm_call_comes_with_its_answer_whole(fakes: Fakes, http: httpx.AsyncClient) -> None:
    call = llm_call()
    call.response_text = '{"P": ' + "x" * 5_000
    fakes.agent.answer("GetLlmCall", agent_pb.GetLlmCallResponse(llm_call=call))

    body = (await http.get(f"/api/llm-calls/{CALL_ID}")).json()

    assert body["response_text"] == call.response_text
    assert (body["status"], body["agent_run_id"]) == ("invalid_output", AGENT_RUN_ID)
    assert fakes.agent.only_call().request == agent_pb.GetLlmCallRequest(llm_call_id=CALL_ID)

    bad_id = await http.get("/api/llm-calls/not-an-id")
    fakes.agent.fail("GetLlmCall", rpc_error(NotFound("no such call", reason="LLM_CALL_NOT_FOUND"), "agent.crucible"))
    missing = await http.get(f"/api/llm-calls/{CALL_ID}")
    assert (bad_id.status_code, missing.status_code) == (400, 404)
    assert missing.json()["reason"] == "LLM_CALL_NOT_FOUND"
    # A page of calls leaves the answers out.
    listed = (await http.get("/api/llm-calls")).json()
    assert "response_text" not in listed["llm_calls"][0]


async def test_llm_calls_render_status_and_cost(fakes: Fakes, http: httpx.AsyncClient) -> None:
    unspecified = llm_call(agent_pb.LLM_CALL_STATUS_UNSPECIFIED)
    priced = llm_call(agent_pb.LLM_CALL_STATUS_SUCCEEDED)
    priced.usd, priced.has_usd = 0.5, True
    fakes.agent.answer("ListLlmCalls", agent_pb.ListLlmCallsResponse(llm_calls=[llm_call(), unspecified, priced]))

    body = (await http.get("/api/llm-calls", params={"agent_run_id": AGENT_RUN_ID})).json()

    assert [(c["status"], c["usd"]) for c in body["llm_calls"]] == [
        ("invalid_output", None),
        ("unspecified", None),
        ("succeeded", 0.5),
    ]
    assert body["llm_calls"][0]["agent_run_id"] == AGENT_RUN_ID
    assert body["llm_calls"][0]["correlation"]["sprint_id"] == SPRINT_ID
    assert fakes.agent.only_call().request == agent_pb.ListLlmCallsRequest(
        filter=agent_pb.Correlation(agent_run_id=AGENT_RUN_ID)
    )
