"""The offline model: a deterministic, rule-and-template stand-in for a language model. It is not one.

``answer(request)`` is a pure function of the request: the same request gives the same answer, a
different request a different one, and another provider or model name a different but equally valid
variant (so two providers asked the same thing give two distinct candidates). It decides by kind:

* a structured output (JSON schema by name, or a forced tool): the task of that name in ``tasks``,
  fitted to the schema and validated, else a generic instance of the schema;
* JSON mode without a schema: a small JSON object about the last user message;
* coding tools offered (see ``coding_agent``): the coding agent's or the Discovery step's next move;
* other tools with ``tool_choice`` required: a call to the first tool with generated arguments;
* otherwise a short plain-text answer that refers to the last user message.

Faults that change the answer come in as ``Modifiers``: ``malformed`` spoils a structured answer (text
that is not JSON, or JSON that breaks the schema), ``bad_code`` makes the coding agent write a program
that fails its tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from typing import Any

from crucible_emulator import coding_agent
from crucible_emulator.conversation import (
    JsonObject,
    ModelAnswer,
    ModelRequest,
    Modifiers,
    StructuredOutput,
    ToolCall,
)
from crucible_emulator.schemas import SchemaFiller, first_error, is_valid
from crucible_emulator.tasks import TASKS, TaskContext
from crucible_emulator.text import camel_to_snake, key_terms, quote_terms, stable_int, summary

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
_STYLE = {"openai": 0, "anthropic": 1}


def task_name(request: ModelRequest) -> str:
    """The task a request asks for, as counted in stats and matched by fault rules."""
    if request.output is not None:
        return "json_object" if request.output.via == "json_object" else camel_to_snake(request.output.name)
    if request.tools and request.tool_choice.mode != "none":
        if coding_agent.is_discovery(request):
            return "discovery"
        if coding_agent.is_coding_request(request):
            return "coding_agent"
        if coding_agent.is_verification_request(request):
            return "verification_agent"
        return "tool_use"
    return "chat"


def answer(request: ModelRequest, modifiers: Modifiers | None = None) -> ModelAnswer:
    modifiers = modifiers or Modifiers()
    key = content_key(request)
    rng = random.Random(stable_int(request.provider, request.model, key))
    if request.output is not None:
        return _structured(request, request.output, modifiers, rng)
    if request.tools and request.tool_choice.mode != "none":
        step = _tool_step(request, modifiers, rng)
        if step is not None:
            if step.text is not None:
                return _limit(request, ModelAnswer(text=step.text))
            calls = tuple(ToolCall(f"{key[:20]}{i:02d}", name, args) for i, (name, args) in enumerate(step.calls))
            return ModelAnswer(tool_calls=calls)
    return _limit(request, ModelAnswer(text=_plain_text(request)))


def content_key(request: ModelRequest) -> str:
    """A digest of everything the answer may depend on."""
    messages = [
        [
            m.role,
            m.text,
            [[c.id, c.name, c.arguments] for c in m.tool_calls],
            [[r.call_id, r.content, r.is_error] for r in m.tool_results],
        ]
        for m in request.messages
    ]
    output = request.output
    parts = [
        request.system,
        messages,
        [t.name for t in request.tools],
        [request.tool_choice.mode, request.tool_choice.name, request.tool_choice.parallel],
        [output.name, output.via, output.schema] if output else None,
    ]
    encoded = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def prompt_tokens(request: ModelRequest) -> int:
    chars = len(request.system)
    for message in request.messages:
        chars += len(message.text)
        chars += sum(len(c.name) + len(json.dumps(c.arguments)) for c in message.tool_calls)
        chars += sum(len(r.content) for r in message.tool_results)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    if request.output is not None and request.output.schema is not None:
        chars += len(json.dumps(request.output.schema))
    return estimate_tokens(chars)


def completion_tokens(result: ModelAnswer) -> int:
    chars = len(result.text or "")
    chars += sum(len(c.name) + len(json.dumps(c.arguments)) for c in result.tool_calls)
    if result.raw_structured is not None:
        chars += len(result.raw_structured)
    elif result.structured is not None:
        chars += len(json.dumps(result.structured))
    return estimate_tokens(chars)


def estimate_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


# ---- structured answers ----


def _structured(
    request: ModelRequest, output: StructuredOutput, modifiers: Modifiers, rng: random.Random
) -> ModelAnswer:
    if output.schema is None:
        value: Any = _json_mode_object(request)
    else:
        value = _fill(request, output.name, output.schema, rng)
    if modifiers.malformed:
        return _malformed(request, output, value, rng)
    return ModelAnswer(structured=value, raw_structured=json.dumps(value))


def _fill(request: ModelRequest, name: str, schema: JsonObject, rng: random.Random) -> Any:
    filler = SchemaFiller(schema, lambda: key_terms(f"{request.last_user_text()}\n{request.system}", 24), rng)
    task = TASKS.get(camel_to_snake(name))
    if task is not None:
        context = TaskContext(request=request, schema=schema, filler=filler, rng=rng, style=_STYLE[request.provider])
        value = filler.conform(schema, task(context))
        if is_valid(schema, value):
            return value
        logger.info(
            "task %s did not fit the schema sent (%s); using the generic generator", name, first_error(schema, value)
        )
    value = filler.generate(schema)
    problem = first_error(schema, value)
    if problem is not None:
        logger.warning("could not build a value satisfying schema %r: %s", name, problem)
    return value


def _json_mode_object(request: ModelRequest) -> JsonObject:
    last = request.last_user_text()
    return {"answer": _plain_text(request), "topic": summary(last, 80), "key_terms": key_terms(last, 6)}


def _malformed(request: ModelRequest, output: StructuredOutput, value: Any, rng: random.Random) -> ModelAnswer:
    encoded = json.dumps(value)
    truncated = encoded[: max(1, len(encoded) // 2)]
    invalid = _schema_breaking(output.schema, value)
    if output.via == "tool" and request.provider == "anthropic":
        # Anthropic's tool input is always an object, so the fault shows as a schema violation.
        return ModelAnswer(structured=invalid if invalid is not None else {"malformed": encoded[:40]})
    if output.via == "tool" or invalid is None or rng.random() < 0.5:
        return ModelAnswer(structured=value, raw_structured=truncated)
    return ModelAnswer(structured=invalid, raw_structured=json.dumps(invalid))


def _schema_breaking(schema: JsonObject | None, value: Any) -> JsonObject | None:
    """A variant of ``value`` that fails ``schema``: a required key dropped or a property of the wrong type."""
    if schema is None or not isinstance(value, dict):
        return None
    for name in schema.get("required", []):
        broken = {k: v for k, v in value.items() if k != name}
        if not is_valid(schema, broken):
            return broken
    for name, current in value.items():
        wrong: Any = [] if not isinstance(current, list) else "not a list"
        broken = {**value, name: wrong}
        if not is_valid(schema, broken):
            return broken
    return None


# ---- tools and text ----


def _tool_step(request: ModelRequest, modifiers: Modifiers, rng: random.Random) -> coding_agent.AgentStep | None:
    if coding_agent.is_discovery(request):
        return coding_agent.discovery_step(request)
    if coding_agent.is_coding_request(request):
        return coding_agent.next_step(request, bad_code=modifiers.bad_code)
    if coding_agent.is_verification_request(request):
        return coding_agent.verification_step(request)
    if request.tool_choice.mode in ("required", "tool"):
        tool = request.tool(request.tool_choice.name or "") or request.tools[0]
        vocabulary = key_terms(request.last_user_text(), 24)
        arguments = SchemaFiller(tool.parameters, vocabulary, rng).generate(tool.parameters)
        return coding_agent.AgentStep(calls=((tool.name, arguments if isinstance(arguments, dict) else {}),))
    return None


def _plain_text(request: ModelRequest) -> str:
    last = request.last_user_text()
    subject = summary(last, 120)
    terms = key_terms(last, 5)
    if not subject:
        return "The offline emulator received an empty message; there is nothing to answer yet."
    if request.provider == "anthropic":
        points = f" the points I would look at first are {quote_terms(terms, 5)}." if terms else " noted."
        return (
            f'On "{subject}":{points} '
            "This reply comes from the Crucible offline emulator (rules and templates, not a language model)."
        )
    points = f" Key terms: {quote_terms(terms, 5)}." if terms else ""
    return (
        f'You asked about "{subject}".{points} '
        "(Answered by the Crucible offline emulator, a deterministic stand-in for a language model.)"
    )


def _limit(request: ModelRequest, result: ModelAnswer) -> ModelAnswer:
    """Cut a text answer at ``max_tokens``, as a provider does."""
    if request.max_tokens is None or result.text is None or completion_tokens(result) <= request.max_tokens:
        return result
    return ModelAnswer(text=result.text[: request.max_tokens * CHARS_PER_TOKEN], truncated=True)
