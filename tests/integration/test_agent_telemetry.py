"""GenAI spans: one per model call, children of the agent run's span; prompts only when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_agent import bootstrap
from crucible_agent.domain.model import ChatMessage, Delta, JudgeConfig, Role, SubagentConfig
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import handlers as h
from crucible_common.database import create_engine, migrate
from tests.integration.agent_fixtures import Emulator, agent_core, agent_settings, serve_emulator

pytestmark = pytest.mark.integration

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    return _EXPORTER


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=4)
    await migrate(engine, schema="agent", script_location=bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        yield running


def _by_name(finished: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name.startswith(prefix)]


async def test_an_agent_run_is_a_parent_span_of_subagents_judge_and_model_calls(
    spans: InMemorySpanExporter, engine: AsyncEngine, emulator: Emulator
) -> None:
    spans.clear()
    async with agent_core(engine, agent_settings(emulator)) as core:
        await core.runner.execute(
            c.ExecuteAgentRun(
                "Write a function that reverses a string",
                subagents=(
                    SubagentConfig("a", "openai", "gpt-4o-mini"),
                    SubagentConfig("b", "anthropic", "claude-haiku-4-5"),
                ),
                judge=JudgeConfig("anthropic", "claude-haiku-4-5"),
            )
        )
    finished = spans.get_finished_spans()
    (run,) = _by_name(finished, "invoke_agent")
    subagents = _by_name(finished, "subagent ")
    (judge,) = _by_name(finished, "judge")
    chats = _by_name(finished, "chat ")
    assert {s.name for s in subagents} == {"subagent a", "subagent b"}
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in [*subagents, judge])
    assert len(chats) == 3
    parents = {s.context.span_id for s in [*subagents, judge]}
    assert all(s.parent is not None and s.parent.span_id in parents for s in chats)
    for chat in chats:
        attributes = dict(chat.attributes or {})
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] in {"openai", "anthropic"}
        assert attributes["gen_ai.request.model"] in {"gpt-4o-mini", "claude-haiku-4-5"}
        assert attributes["gen_ai.response.model"]
        assert int(attributes["gen_ai.usage.input_tokens"]) > 0  # type: ignore[arg-type]
        assert int(attributes["gen_ai.usage.output_tokens"]) > 0  # type: ignore[arg-type]
        assert "gen_ai.input.messages" not in attributes
        assert "gen_ai.output.messages" not in attributes


async def test_prompts_are_captured_only_when_enabled(
    spans: InMemorySpanExporter, engine: AsyncEngine, emulator: Emulator
) -> None:
    spans.clear()
    secret_prompt = "the launch code is 0000"
    async with agent_core(engine, agent_settings(emulator, capture_prompts=True)) as core:
        await h.complete(
            c.Complete("openai", "gpt-4o-mini", (ChatMessage(Role.USER, secret_prompt),)), core.llm, core.calls
        )
    (chat,) = _by_name(spans.get_finished_spans(), "chat ")
    attributes = dict(chat.attributes or {})
    assert secret_prompt in str(attributes["gen_ai.input.messages"])
    assert attributes["gen_ai.output.messages"]


async def test_a_streamed_call_has_the_span_of_an_unstreamed_one(
    spans: InMemorySpanExporter, engine: AsyncEngine, emulator: Emulator
) -> None:
    cmd = c.Complete("anthropic", "claude-haiku-4-5", (ChatMessage(Role.USER, "Name three rivers"),))

    async def ignore(delta: Delta) -> None:
        return None

    spans.clear()
    async with agent_core(engine, agent_settings(emulator)) as core:
        await h.complete(cmd, core.llm, core.calls)
        await h.complete(cmd, core.llm, core.calls, on_delta=ignore)
    whole, streamed = (dict(s.attributes or {}) for s in _by_name(spans.get_finished_spans(), "chat "))

    assert (whole.pop("crucible.llm.streamed"), streamed.pop("crucible.llm.streamed")) == (False, True)
    assert whole.pop("crucible.llm.call_id") != streamed.pop("crucible.llm.call_id")
    assert whole == streamed
