"""One traceable chain through the real stack: a recommendation, its run, its summary (issue 11).

A recommendation is posted to the chat through the spec API, carrying the trace context of a span
this test records itself into the stack's trace files; the run created from it by a trigger is
executed to its end; its lineage then shows the recommendation, the trigger, the trace, the
summary and the spans that link them, read back from the files every process of the stack
writes. A second stack exports its spans over OTLP to a receiver in this test, which gets the same
chain, the agent service's gen_ai spans inside the run's trace; that stack's lineage says its
spans are not kept locally and still names them.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceStub
from crucible_common.protobuf import struct
from crucible_common.telemetry import JsonLinesSpanExporter, traces_dir
from tests.conftest import fresh_database
from tests.system.conftest import Stack, start_stack
from tests.system.test_runs import _finished, _project

pytestmark = pytest.mark.system

PARAMETERS = {"num_candidates": 2, "num_scenarios": 2}
# Any valid W3C context will do where nobody records the recommendation's span.
ELSEWHERE = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}


async def _recommend(
    stack: Stack, http: httpx.AsyncClient, project_id: str, trace_context: dict[str, str]
) -> tuple[str, str]:
    """An Architect message in a new chat session of the project, recommending a small run, with
    the trace context given: stored through the spec service's own API, as the Architect's turn
    stores one (the gateway refuses a recommendation from a client)."""
    session = await http.post(f"/api/projects/{project_id}/chat-sessions", json={"title": "Architect"})
    assert session.status_code == 201, session.text
    session_id: str = session.json()["id"]
    config = {"mode": "full_search", "parameters": PARAMETERS, "trace": trace_context}
    async with grpc.aio.insecure_channel(stack.addresses["spec"]) as channel:
        created = await SpecServiceStub(channel).CreateChatMessage(
            spec_pb.CreateChatMessageRequest(
                chat_session_id=session_id,
                role=spec_pb.MESSAGE_ROLE_AGENT,
                content="I recommend a full search of 2 candidates in 2 scenarios.\nPress Run to start it.",
                metadata=struct({"recommended_run_config": config}),
            )
        )
    return session_id, created.chat_message.id


async def _run_recommended(
    http: httpx.AsyncClient, project_id: str, session_id: str, message_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run a Run button creates from the recommendation, as created and once it has ended."""
    created = await http.post(
        "/api/runs",
        json={
            "project_id": project_id,
            "mode": "full_search",
            "parameters": PARAMETERS,
            "chat_session_id": session_id,
            "recommended_message_id": message_id,
            "ui_trigger_id": f"lineage-{uuid.uuid4()}",
            "ui_trigger_source": "integration_test",
            "ui_trigger_metadata": {"test": "lineage"},
        },
    )
    assert created.status_code == 201, created.text
    executed = await http.post(f"/api/runs/{created.json()['id']}/execute", json={"phases": "all"})
    assert executed.status_code == 200, executed.text
    assert executed.json()["trace_id"], "the execution trace is known as soon as the run starts"
    done = await _finished(http, created.json()["id"])
    assert done["status"] == "COMPLETED", done["failure_reason"]
    assert done["trace_id"] == executed.json()["trace_id"]
    return created.json(), done


def _links(span: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {x["attributes"]["crucible.link"]: (x["trace_id"], x["span_id"]) for x in span["links"]}


# ---------------------------------------------------------------- spans in the stack's files


def _record_recommendation_span(state_dir: Path) -> dict[str, str]:
    """A span of a stand-in Architect, written to the stack's trace files as a process of it would."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "crucible-test-architect"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(traces_dir(state_dir) / "architect.jsonl")))
    with provider.get_tracer("test").start_as_current_span("architect.recommend") as span:
        context = span.get_span_context()
    provider.shutdown()
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


# The run's trace holds at least 6 spans of its own and 2 for each of its 6 model calls (one design,
# one scenarios, 2 x 2 evaluations).
TRACE_SPANS = 6 + 2 * 6


async def _whole_lineage(http: httpx.AsyncClient, run_id: str, timeout: float = 15) -> dict[str, Any]:
    """The lineage once each of its spans is in the files (spans are flushed every 200 ms here).

    Each process flushes its own spans, so the run's summary span can be in the files before the
    agent service's last spans of the same run are: the wait is for the whole trace, not only the
    lineage's own spans.
    """
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"/api/runs/{run_id}/lineage")
        assert response.status_code == 200, response.text
        lineage: dict[str, Any] = response.json()
        roles = [s["role"] for s in lineage["spans"] if s["found"]]
        whole = roles[-1:] == ["summary"] and len(roles) == len(lineage["spans"])
        if (whole and lineage["trace_span_count"] >= TRACE_SPANS) or time.monotonic() > deadline:
            return lineage
        await asyncio.sleep(0.2)


async def test_the_lineage_links_the_recommendation_its_run_and_its_summary(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    project_id = await _project(http)
    recommendation = _record_recommendation_span(stack.state_dir)
    session_id, message_id = await _recommend(stack, http, project_id, recommendation)

    created, done = await _run_recommended(http, project_id, session_id, message_id)
    lineage = await _whole_lineage(http, created["id"])

    assert lineage["recommendation"] == {
        "message_id": message_id,
        "chat_session_id": session_id,
        "found": True,
        "label": "I recommend a full search of 2 candidates in 2 scenarios.",
        "created_at": lineage["recommendation"]["created_at"],
    }
    assert lineage["recommended_config"]["trace"] == recommendation
    assert lineage["trigger"] == created["trigger"]
    assert lineage["trigger"]["metadata"] == {"test": "lineage"}
    assert lineage["trace_id"] == done["trace_id"]
    assert lineage["summary"]["message_id"] == done["run_summary_message_id"]
    assert lineage["summary"]["label"] == f"Run {created['id'][:8]} summary"
    assert lineage["spans_stored_locally"] is True
    spans = lineage["spans"]
    assert [(s["role"], s["found"]) for s in spans] == [
        ("recommendation", True),
        ("create_run", True),
        ("execution", True),
        ("executor", True),
        ("summary", True),
    ]
    recommended, create, root, executor, summary = spans
    assert (recommended["trace_id"], recommended["span_id"]) == (recommendation["trace_id"], recommendation["span_id"])
    assert (recommended["name"], recommended["service"]) == ("architect.recommend", "crucible-test-architect")
    # Each span after the recommendation names the one it follows.
    assert (create["name"], create["service"]) == ("create run", "crucible-run")
    assert _links(create) == {"recommendation": (recommended["trace_id"], recommended["span_id"])}
    assert create["links"][0]["attributes"]["crucible.recommendation_id"] == message_id
    assert root["trace_id"] == done["trace_id"]
    assert root["parent_span_id"] == ""
    assert _links(root)["create_run"] == (create["trace_id"], create["span_id"])
    assert _links(root)["recommendation"] == (recommended["trace_id"], recommended["span_id"])
    assert (executor["trace_id"], executor["parent_span_id"]) == (root["trace_id"], root["span_id"])
    assert summary["trace_id"] != root["trace_id"]
    assert _links(summary) == {"run": (root["trace_id"], root["span_id"])}
    assert summary["attributes"]["crucible.summary_message_id"] == done["run_summary_message_id"]
    # The phases and the agent service's model calls are in the run's one trace.
    assert {"crucible-run", "crucible-agent"} <= set(lineage["trace_services"])
    assert lineage["trace_span_count"] >= TRACE_SPANS


# ---------------------------------------------------------------- spans exported over OTLP


@dataclass
class ExportedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    # (crucible.link or "", trace id, span id)
    links: list[tuple[str, str, str]]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver: keeps every span it is sent, decoded."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self._lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        received = []
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    links = []
                    for link in span.links:
                        kind = str(_attributes(link.attributes).get("crucible.link", ""))
                        links.append((kind, link.trace_id.hex(), link.span_id.hex()))
                    received.append(
                        ExportedSpan(
                            service,
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            _attributes(span.attributes),
                            links,
                        )
                    )
        with self._lock:
            self.spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def named(self, name: str, run_id: str) -> list[ExportedSpan]:
        with self._lock:
            return [s for s in self.spans if s.name == name and s.attributes.get("crucible.run_id") == run_id]

    def of_trace(self, trace_id: str) -> list[ExportedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, int]]:
    # A thread pool of its own: the stack exports while the test's event loop is busy or blocked.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    received = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(received, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield received, port
    server.stop(None)


@pytest.fixture(scope="module")
async def otlp_stack(
    receiver: tuple[Receiver, int], postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A stack whose processes export their spans over OTLP to ``receiver``, on a database of its own."""
    async with fresh_database(postgres_admin_url, "lineage_otlp") as url:
        with pytest.MonkeyPatch.context() as patch:
            # The stack's processes inherit the test's environment (but for CRUCIBLE_* settings).
            patch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver[1]}")
            running = start_stack(tmp_path_factory.mktemp("otlp-stack"), url)
        yield running
        assert running.stop() == 0, "\n".join(running.output)


async def _until(check: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the receiver did not get the spans in time"
        await asyncio.sleep(0.2)


async def test_over_otlp_the_chain_arrives_with_the_model_calls_in_the_runs_trace(
    otlp_stack: Stack, receiver: tuple[Receiver, int]
) -> None:
    received = receiver[0]
    async with httpx.AsyncClient(base_url=otlp_stack.url, timeout=10) as http:
        project_id = await _project(http)
        session_id, message_id = await _recommend(otlp_stack, http, project_id, ELSEWHERE)
        created, done = await _run_recommended(http, project_id, session_id, message_id)
        run_id, trace_id = created["id"], done["trace_id"]

        def complete() -> bool:
            chats = [s for s in received.of_trace(trace_id) if s.name.startswith("chat ")]
            return bool(received.named("post run summary", run_id)) and len(chats) >= 6

        await _until(complete)
        lineage = (await http.get(f"/api/runs/{run_id}/lineage")).json()

    # CreateRun's span links to the recommendation's context.
    (create,) = received.named("create run", run_id)
    assert create.service == "crucible-run"
    assert create.links == [("recommendation", ELSEWHERE["trace_id"], ELSEWHERE["span_id"])]
    # The run's spans are one trace: its root, the executor, the phases and the agent's model calls.
    (root,) = received.named("run", run_id)
    assert (root.trace_id, root.parent_span_id) == (trace_id, "")
    assert ("create_run", create.trace_id, create.span_id) in root.links
    in_trace = received.of_trace(trace_id)
    assert {"execute run", "phase design", "phase scenarios", "phase evaluate", "phase rank"} <= {
        s.name for s in in_trace
    }
    chats = [s for s in in_trace if s.name.startswith("chat ")]
    # One design, one scenarios and 2 x 2 evaluations, each a model call in the agent service.
    assert len(chats) == 6
    for chat in chats:
        assert chat.service == "crucible-agent"
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert int(chat.attributes["gen_ai.usage.input_tokens"]) > 0
        assert int(chat.attributes["gen_ai.usage.output_tokens"]) > 0
    # The summary's span links to the run's root and names the message it posted.
    (summary,) = received.named("post run summary", run_id)
    assert summary.trace_id != trace_id
    assert summary.links == [("run", root.trace_id, root.span_id)]
    assert summary.attributes["crucible.summary_message_id"] == done["run_summary_message_id"]

    # Nothing is kept locally: the lineage says so, and still names every span by its ids.
    assert lineage["spans_stored_locally"] is False
    assert "OTLP" in lineage["spans_note"]
    assert lineage["trace_id"] == trace_id
    assert [(s["role"], s["found"], s["span_id"]) for s in lineage["spans"]] == [
        ("recommendation", False, ELSEWHERE["span_id"]),
        ("create_run", False, create.span_id),
        ("execution", False, root.span_id),
        ("summary", False, summary.span_id),
    ]
    assert not (otlp_stack.state_dir / "traces").exists()
