"""What a run's model calls will cost, estimated before they are made (preflight, budgets)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from crucible_run.domain.model import JsonObject

# Rough token counts of each kind of call: the prompt (problem, candidate, scenario) and the answer.
CHARS_PER_TOKEN = 4
DESIGN_OUTPUT_PER_CANDIDATE = 220
SCENARIO_OUTPUT_PER_SCENARIO = 180
EVALUATION_OUTPUT = 450
ANSWER_OVERHEAD = 100
# An answer that does not validate is asked again by the agent service (as many times as its
# CRUCIBLE_STRUCTURED_OUTPUT_RETRIES says, which it tells with its prices; twice by default, assumed
# when it does not), each re-ask reading the prompt, the answers before it and a note on what was
# wrong. A budgeted run holds room for those answers (``most``) where its budget has it, and the
# agent service makes no re-ask whose estimate would not fit in what was held. The room is generous
# (answers twice as long as estimated, a long note), for the re-asks a run with budget to spare can
# afford never to be refused; near the budget's end the room left caps it.
STRUCTURED_ATTEMPTS = 3
REASK_ANSWER_FACTOR = 2
REASK_NOTE_TOKENS = 150
# Before they are written, a candidate and a scenario are estimated at what a designer and a scenario
# writer are estimated to write for one (a seed, already written, is sized as it is).
CANDIDATE_CHARS = DESIGN_OUTPUT_PER_CANDIDATE * CHARS_PER_TOKEN
SCENARIO_CHARS = SCENARIO_OUTPUT_PER_SCENARIO * CHARS_PER_TOKEN


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens; None when the model has no price (unknown, not free)."""

    input_per_mtok: float | None
    output_per_mtok: float | None

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


UNPRICED = ModelPrice(None, None)


@dataclass(frozen=True)
class Pricing:
    """What the agent service says calls cost: each model's price, in the order asked, and how many
    times it asks a structured call at most (the first ask and the re-asks)."""

    prices: tuple[ModelPrice, ...]
    structured_attempts: int = STRUCTURED_ATTEMPTS


@dataclass(frozen=True)
class PromptSizes:
    """The characters each kind of call reads (its system prompt, its prompt and its schema), known
    before the run from the problem; for an evaluation, all but its candidate and its scenario."""

    design: int
    scenarios: int
    evaluation: int


@dataclass(frozen=True)
class CallEstimate:
    input_tokens: int
    output_tokens: int
    usd: float | None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def tokens_of(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def estimate(prompt_chars: int, output_tokens: int, price: ModelPrice) -> CallEstimate:
    input_tokens = max(1, prompt_chars // CHARS_PER_TOKEN)
    return CallEstimate(input_tokens, output_tokens, price.cost(input_tokens, output_tokens))


def call_chars(system: str, prompt: str, schema: JsonObject) -> int:
    """What a structured call reads: the system prompt and the schema as well as the prompt."""
    return len(system) + len(prompt) + len(json.dumps(schema))


def of_call(system: str, prompt: str, schema: JsonObject, output_tokens: int, price: ModelPrice) -> CallEstimate:
    """A structured call's estimate, from what it reads."""
    return estimate(call_chars(system, prompt, schema), output_tokens, price)


def most(first: CallEstimate, price: ModelPrice, attempts: int) -> CallEstimate:
    """What a structured call estimated at ``first`` may cost when it is asked ``attempts`` times."""
    if attempts <= 1:
        return first
    answer = first.output_tokens * REASK_ANSWER_FACTOR
    input_tokens = sum(first.input_tokens + k * (answer + REASK_NOTE_TOKENS) for k in range(attempts))
    output_tokens = answer * attempts
    return CallEstimate(input_tokens, output_tokens, price.cost(input_tokens, output_tokens))


def design_output(candidates: int) -> int:
    return ANSWER_OVERHEAD + DESIGN_OUTPUT_PER_CANDIDATE * candidates


def scenarios_output(scenarios: int) -> int:
    return ANSWER_OVERHEAD + SCENARIO_OUTPUT_PER_SCENARIO * scenarios


@dataclass(frozen=True)
class CostEstimate:
    tokens: int
    # None when any call would be unpriced.
    usd: float | None
    calls: int


def total(calls: list[CallEstimate], groups: Sequence[tuple[CallEstimate, int]] = ()) -> CostEstimate:
    """The cost of ``calls``, and of each group's count of calls like its estimate: counted, not
    listed, so that a count far past any limit (which preflight refuses, but still answers) costs
    no memory."""
    costs = [c.usd for c in calls]
    tokens = sum(c.tokens for c in calls)
    for each, times in groups:
        if times:
            costs.append(None if each.usd is None else each.usd * times)
            tokens += each.tokens * times
    usd = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    return CostEstimate(tokens, usd, len(calls) + sum(times for _, times in groups))
