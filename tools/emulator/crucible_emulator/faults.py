"""Per-request decisions on latency and faults, and the counters the admin API reports.

Every model request takes the next number of a sequence; its jitter and its rate-based faults are drawn
from a generator seeded with (seed, number), so a given seed and request sequence always fault alike.
Targeted rules are looked at first, in order; the first one that matches the request, still has a count
left and can affect it (``malformed`` needs a structured answer, ``bad_code`` a turn that writes the
program) fires and uses one count. Otherwise the rates are tried in the order error, rate limit,
malformed, timeout, truncated, and the first that fires is the request's one fault.

``answered`` counts the model answers fully delivered with a 200 (a malformed one too: a provider is paid
for it); a fault status, a truncated answer, or a caller gone before the end of the answer is not counted.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from crucible_emulator.config import FAULT_KINDS, EmulatorConfig, FaultKind, FaultRule, Provider
from crucible_emulator.conversation import JsonObject, Modifiers
from crucible_emulator.text import stable_int


@dataclass(frozen=True)
class RequestFacts:
    """What fault rules can match on, and which answer-changing faults could apply."""

    provider: Provider
    task: str
    model: str
    structured: bool
    writes_program: bool


@dataclass(frozen=True)
class Decision:
    fault: FaultKind | None
    delay_seconds: float
    modifiers: Modifiers = field(default_factory=Modifiers)


class EmulatorState:
    """The live configuration, the request sequence and the counters."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.sequence = 0
        self.requests: Counter[tuple[str, str]] = Counter()
        self.faults: Counter[str] = Counter()
        # Task -> answers delivered in full (see ``delivered``).
        self.answered: Counter[str] = Counter()

    def decide(self, facts: RequestFacts) -> Decision:
        config = self.config
        number = self.sequence
        self.sequence += 1
        rng = random.Random(stable_int(config.seed, number))
        delay = (config.latency_ms + rng.random() * config.jitter_ms) / 1000
        # Drawn whatever the rates, and new draws only ever appended, so a seed keeps its earlier faults.
        draws = rng.random(), rng.random(), rng.random(), rng.random(), rng.random()
        fault = self._targeted(facts)
        if fault is None:
            if draws[0] < config.error_rate:
                fault = "error"
            elif draws[1] < config.rate_limit_rate:
                fault = "rate_limit"
            elif facts.structured and draws[2] < config.malformed_rate:
                fault = "malformed"
            elif draws[3] < config.timeout_rate:
                fault = "timeout"
            elif draws[4] < config.truncated_rate:
                fault = "truncated"
        self.requests[(facts.provider, facts.task)] += 1
        if fault is not None:
            self.faults[fault] += 1
        modifiers = Modifiers(malformed=fault == "malformed", bad_code=fault == "bad_code")
        return Decision(fault=fault, delay_seconds=delay, modifiers=modifiers)

    def _targeted(self, facts: RequestFacts) -> FaultKind | None:
        for rule in self.config.faults:
            if rule.count == 0 or not _matches(rule, facts):
                continue
            if rule.kind == "malformed" and not facts.structured:
                continue
            if rule.kind == "bad_code" and not facts.writes_program:
                continue
            if rule.count is not None:
                rule.count -= 1
            return rule.kind
        return None

    def delivered(self, task: str) -> None:
        """A model answer to a ``task`` request was written in full, with a 200, to a caller still connected."""
        self.answered[task] += 1

    def reset(self) -> None:
        """Zero the counters and the request sequence, and drop the targeted fault rules."""
        self.sequence = 0
        self.requests.clear()
        self.faults.clear()
        self.answered.clear()
        self.config = self.config.model_copy(update={"faults": []})

    def stats(self) -> JsonObject:
        by_provider: Counter[str] = Counter()
        by_task: Counter[str] = Counter()
        nested: dict[str, dict[str, int]] = {}
        for (provider, task), count in self.requests.items():
            by_provider[provider] += count
            by_task[task] += count
            nested.setdefault(provider, {})[task] = count
        return {
            "requests_total": sum(self.requests.values()),
            "requests_by_provider": dict(by_provider),
            "requests_by_task": dict(by_task),
            "requests_by_provider_and_task": nested,
            "faults_injected": {kind: self.faults[kind] for kind in FAULT_KINDS},
            "faults_injected_total": sum(self.faults.values()),
            "answered": sum(self.answered.values()),
            "answered_by_task": dict(self.answered),
        }


def _matches(rule: FaultRule, facts: RequestFacts) -> bool:
    match = rule.match
    return (
        (match.provider is None or match.provider == facts.provider)
        and (match.task is None or match.task == facts.task)
        and (match.model is None or match.model == facts.model)
    )
