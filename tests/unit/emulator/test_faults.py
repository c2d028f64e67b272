"""Latency and fault decisions: deterministic per seed and sequence; targeted rules with counts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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


def test_timeout_and_truncated_rates() -> None:
    assert all(d.fault == "timeout" for d in decisions(EmulatorConfig(timeout_rate=1), CHAT))
    assert all(d.fault == "truncated" for d in decisions(EmulatorConfig(truncated_rate=1), CHAT))
    assert all(d.fault == "truncated" for d in decisions(EmulatorConfig(truncated_rate=1), STRUCTURED))
    # One fault a request: the earlier rates win.
    assert all(d.fault == "timeout" for d in decisions(EmulatorConfig(timeout_rate=1, truncated_rate=1), CHAT))
    assert all(d.fault == "error" for d in decisions(EmulatorConfig(error_rate=1, truncated_rate=1), CHAT))
    config = {"timeout_rate": 0.1, "truncated_rate": 0.2, "seed": 3}
    first = decisions(EmulatorConfig(**config), CHAT)
    assert first == decisions(EmulatorConfig(**config), CHAT)
    assert first != decisions(EmulatorConfig(**{**config, "seed": 4}), CHAT)
    kinds = [d.fault for d in first]
    assert 5 < kinds.count("timeout") < 40
    assert 10 < kinds.count("truncated") < 70


def test_new_rates_keep_the_faults_a_seed_gave_before() -> None:
    old = {"error_rate": 0.1, "rate_limit_rate": 0.1, "malformed_rate": 0.2, "jitter_ms": 50, "seed": 7}
    before = decisions(EmulatorConfig(**old), STRUCTURED)
    after = decisions(EmulatorConfig(**old, timeout_rate=0.3, truncated_rate=0.3), STRUCTURED)
    assert [d.delay_seconds for d in before] == [d.delay_seconds for d in after]
    for was, now in zip(before, after, strict=True):
        assert now.fault == was.fault if was.fault is not None else now.fault in (None, "timeout", "truncated")
    assert {d.fault for d in after} >= {"timeout", "truncated"}


def test_targeted_truncated_rule_fires_on_any_request() -> None:
    state = EmulatorState(EmulatorConfig(faults=[FaultRule(kind="truncated", count=2)]))
    assert [state.decide(CHAT).fault, state.decide(CODING).fault, state.decide(CHAT).fault] == [
        "truncated",
        "truncated",
        None,
    ]
    assert state.stats()["faults_injected"]["truncated"] == 2


def test_answered_counts_by_task_and_resets() -> None:
    state = EmulatorState(EmulatorConfig())
    assert state.stats()["answered"] == 0
    assert state.stats()["answered_by_task"] == {}
    state.delivered("chat")
    state.delivered("chat")
    state.delivered("planning_questions")
    stats = state.stats()
    assert stats["answered"] == 3
    assert stats["answered_by_task"] == {"chat": 2, "planning_questions": 1}
    state.reset()
    assert state.stats()["answered"] == 0
    assert state.stats()["answered_by_task"] == {}


def test_new_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUCIBLE_EMULATOR_TIMEOUT_RATE", "0.25")
    monkeypatch.setenv("CRUCIBLE_EMULATOR_TRUNCATED_RATE", "0.5")
    monkeypatch.setenv("CRUCIBLE_EMULATOR_TIMEOUT_SECONDS", "2.5")
    config = EmulatorConfig.from_env()
    assert (config.timeout_rate, config.truncated_rate, config.timeout_seconds) == (0.25, 0.5, 2.5)
    monkeypatch.setenv("CRUCIBLE_EMULATOR_TRUNCATED_RATE", "1.5")
    with pytest.raises(ValidationError):
        EmulatorConfig.from_env()
