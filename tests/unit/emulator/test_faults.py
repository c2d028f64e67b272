"""Latency and fault decisions: deterministic per seed and sequence; targeted rules with counts."""

from __future__ import annotations

from crucible_emulator.config import EmulatorConfig, FaultMatch, FaultRule
from crucible_emulator.faults import Decision, EmulatorState, RequestFacts

STRUCTURED = RequestFacts("openai", "planning_questions", "gpt", structured=True, writes_program=False)
CHAT = RequestFacts("anthropic", "chat", "claude", structured=False, writes_program=False)
CODING = RequestFacts("openai", "coding_agent", "gpt", structured=False, writes_program=True)


def decisions(config: EmulatorConfig, facts: RequestFacts, count: int = 200) -> list[Decision]:
    state = EmulatorState(config)
    return [state.decide(facts) for _ in range(count)]


def test_rate_faults_are_deterministic_for_a_seed() -> None:
    config = {"error_rate": 0.1, "rate_limit_rate": 0.1, "malformed_rate": 0.2, "jitter_ms": 50, "seed": 7}
    first = decisions(EmulatorConfig(**config), STRUCTURED)
    assert first == decisions(EmulatorConfig(**config), STRUCTURED)
    assert first != decisions(EmulatorConfig(**{**config, "seed": 8}), STRUCTURED)
    kinds = [d.fault for d in first]
    assert 5 < kinds.count("error") < 40
    assert 5 < kinds.count("rate_limit") < 40
    assert 10 < kinds.count("malformed") < 70


def test_rates_of_zero_and_one() -> None:
    assert all(d.fault is None for d in decisions(EmulatorConfig(), STRUCTURED))
    assert all(d.fault == "error" for d in decisions(EmulatorConfig(error_rate=1), CHAT))
    assert all(d.fault == "rate_limit" for d in decisions(EmulatorConfig(rate_limit_rate=1), CHAT))


def test_malformed_rate_only_affects_structured_requests() -> None:
    assert all(d.fault is None for d in decisions(EmulatorConfig(malformed_rate=1), CHAT))
    assert all(d.modifiers.malformed for d in decisions(EmulatorConfig(malformed_rate=1), STRUCTURED))


def test_latency_and_jitter() -> None:
    delays = [d.delay_seconds for d in decisions(EmulatorConfig(latency_ms=200, jitter_ms=100), CHAT)]
    assert all(0.2 <= d <= 0.3 for d in delays)
    assert len(set(delays)) > 100


def test_targeted_rule_with_count_fires_that_many_times() -> None:
    rule = FaultRule(match=FaultMatch(provider="openai", task="planning_questions"), kind="rate_limit", count=2)
    state = EmulatorState(EmulatorConfig(faults=[rule]))
    assert state.decide(CHAT).fault is None
    assert [state.decide(STRUCTURED).fault for _ in range(3)] == ["rate_limit", "rate_limit", None]
    assert state.config.faults[0].count == 0


def test_rule_without_count_fires_forever_and_model_must_match() -> None:
    rule = FaultRule(match=FaultMatch(model="claude"), kind="error")
    state = EmulatorState(EmulatorConfig(faults=[rule]))
    assert all(state.decide(CHAT).fault == "error" for _ in range(5))
    assert state.decide(STRUCTURED).fault is None


def test_answer_faults_wait_for_a_request_they_can_affect() -> None:
    rules = [FaultRule(kind="bad_code", count=1), FaultRule(kind="malformed", count=1)]
    state = EmulatorState(EmulatorConfig(faults=rules))
    assert state.decide(CHAT).fault is None
    assert state.decide(CODING).modifiers.bad_code
    assert state.decide(CODING).fault is None
    assert state.decide(STRUCTURED).modifiers.malformed


def test_stats_and_reset() -> None:
    state = EmulatorState(EmulatorConfig(faults=[FaultRule(kind="timeout", count=1)]))
    state.decide(CHAT)
    state.decide(STRUCTURED)
    stats = state.stats()
    assert stats["requests_total"] == 2
    assert stats["requests_by_provider"] == {"anthropic": 1, "openai": 1}
    assert stats["requests_by_task"] == {"chat": 1, "planning_questions": 1}
    assert stats["faults_injected"]["timeout"] == 1
    state.reset()
    assert state.stats()["requests_total"] == 0
    assert state.config.faults == []
    assert state.sequence == 0
