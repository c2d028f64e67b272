"""The offline model as a whole: determinism, variants, modes, malformed answers, tokens."""

from __future__ import annotations

import json

import jsonschema
import pytest

from crucible_emulator.config import Provider
from crucible_emulator.conversation import (
    Message,
    ModelRequest,
    Modifiers,
    StructuredOutput,
    ToolChoice,
    ToolSpec,
)
from crucible_emulator.offline_model import answer, completion_tokens, prompt_tokens, task_name
from tests.unit.emulator import task_schemas
from tests.unit.emulator.builders import chat, coding, structured

GENERIC_SCHEMA = task_schemas.obj(
    {
        "headline": task_schemas.STRING,
        "count": {"type": "integer", "minimum": 1, "maximum": 9},
        "tags": {"type": "array", "items": task_schemas.STRING, "minItems": 2, "maxItems": 4},
    }
)


def test_same_input_same_answer() -> None:
    for request in (
        chat("How should we water tomatoes?"),
        structured("anything", GENERIC_SCHEMA, "Plan a garden with tomatoes and basil"),
        coding("Write a function that adds two numbers."),
    ):
        assert answer(request) == answer(request)


def test_different_input_different_answer() -> None:
    assert answer(chat("How should we water tomatoes?")) != answer(chat("How should we prune roses?"))
    first = answer(structured("anything", GENERIC_SCHEMA, "Plan a garden with tomatoes and basil"))
    second = answer(structured("anything", GENERIC_SCHEMA, "Plan a kitchen with ovens and sinks"))
    assert first.structured != second.structured


def test_provider_and_model_give_distinct_variants() -> None:
    prompt = "Write a Python script that prints 'hello world'."
    schema = task_schemas.PLANNING_QUESTIONS
    callers: list[tuple[Provider, str]] = [("openai", "gpt-4.1"), ("anthropic", "claude-sonnet"), ("openai", "o4")]
    variants = [
        answer(structured("planning_questions", schema, prompt, provider=provider, model=model)).structured
        for provider, model in callers
    ]
    assert len({json.dumps(v, sort_keys=True) for v in variants}) == 3
    assert answer(chat("Hi there, how are you?", provider="openai")) != answer(
        chat("Hi there, how are you?", provider="anthropic")
    )


def test_plain_text_refers_to_the_last_user_message_and_says_what_it_is() -> None:
    request = ModelRequest(
        provider="openai",
        model="m",
        system="Be brief.",
        messages=(
            Message("user", "Tell me about roses"),
            Message("assistant", "Sure."),
            Message("user", "And tulips?"),
        ),
    )
    text = answer(request).text
    assert text is not None
    assert "tulips" in text.lower()
    assert "offline emulator" in text


def test_generic_fallback_for_an_unknown_schema_name() -> None:
    value = answer(structured("GardenPlan", GENERIC_SCHEMA, "Plan a garden with tomatoes and basil")).structured
    jsonschema.validate(value, GENERIC_SCHEMA)
    assert set(" ".join(value["tags"]).split()) <= {"plan", "garden", "tomatoes", "basil"}


def test_json_mode_answers_a_json_object() -> None:
    request = ModelRequest(
        provider="openai",
        model="m",
        system="",
        messages=(Message("user", "List the benefits of compost"),),
        output=StructuredOutput("json_object", None, "json_object"),
    )
    value = answer(request).structured
    assert isinstance(value, dict)
    assert "compost" in value["key_terms"]
    assert task_name(request) == "json_object"


def test_malformed_response_format_is_not_json_or_breaks_the_schema() -> None:
    seen = set()
    for i in range(12):
        request = structured("planning_questions", task_schemas.PLANNING_QUESTIONS, f"Task number {i}: print hi")
        result = answer(request, Modifiers(malformed=True))
        assert result.raw_structured is not None
        try:
            value = json.loads(result.raw_structured)
        except ValueError:
            seen.add("not json")
            continue
        seen.add("invalid")
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, task_schemas.PLANNING_QUESTIONS)
    assert seen == {"not json", "invalid"}


def test_malformed_anthropic_tool_input_breaks_the_schema() -> None:
    request = structured("judge_decision", task_schemas.JUDGE_DECISION, "Pick one", provider="anthropic")
    result = answer(request, Modifiers(malformed=True))
    assert isinstance(result.structured, dict)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(result.structured, task_schemas.JUDGE_DECISION)


def test_tokens_are_positive_and_grow_with_the_prompt() -> None:
    short, long = chat("Hi"), chat("Hi " * 400)
    assert 1 <= prompt_tokens(short) < prompt_tokens(long)
    assert prompt_tokens(long) == prompt_tokens(chat("Hi " * 400))
    assert completion_tokens(answer(short)) > 0


def test_max_tokens_cuts_a_text_answer() -> None:
    request = ModelRequest(provider="anthropic", model="m", system="", messages=(Message("user", "Explain soil"),))
    cut = answer(ModelRequest(**{**request.__dict__, "max_tokens": 5}))
    assert cut.truncated
    assert cut.text is not None
    assert len(cut.text) <= 20
    assert not answer(request).truncated


def test_task_names() -> None:
    assert task_name(chat("hi")) == "chat"
    assert task_name(structured("PlanningQuestions", {}, "x")) == "planning_questions"
    assert task_name(coding("Write a function that adds two numbers.")) == "coding_agent"
    other_tools = ModelRequest(
        provider="openai",
        model="m",
        system="",
        messages=(Message("user", "weather?"),),
        tools=(ToolSpec("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}}),),
    )
    assert task_name(other_tools) == "tool_use"
    assert answer(other_tools).text is not None


def test_required_tool_choice_calls_a_tool_with_valid_arguments() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    request = ModelRequest(
        provider="openai",
        model="m",
        system="",
        messages=(Message("user", "Weather in Lisbon?"),),
        tools=(ToolSpec("get_weather", "", schema),),
        tool_choice=ToolChoice("required"),
    )
    (call,) = answer(request).tool_calls
    assert call.name == "get_weather"
    jsonschema.validate(call.arguments, schema)


def test_tool_choice_none_answers_in_text() -> None:
    request = coding("Write a function that adds two numbers.")
    request = ModelRequest(**{**request.__dict__, "tool_choice": ToolChoice("none")})
    assert answer(request).text is not None
    assert task_name(request) == "chat"
