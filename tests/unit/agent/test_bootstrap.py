"""The agent service's providers as its settings configure them."""

from __future__ import annotations

import logging

import pytest

from crucible_agent import bootstrap
from crucible_agent.config import AgentSettings


def _settings(**values: str) -> AgentSettings:
    return AgentSettings(openai_api_key=None, anthropic_api_key=None, **values)  # type: ignore[arg-type]


def test_a_key_or_a_base_url_configures_a_provider(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        providers = bootstrap.build_providers(_settings(openai_base_url="http://127.0.0.1:9/v1"))
    assert list(providers) == ["openai"]
    assert caplog.records == []


def test_without_any_provider_the_service_says_so_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert bootstrap.build_providers(_settings()) == {}
    (record,) = caplog.records
    assert "no LLM provider is configured" in record.getMessage()
    assert "CRUCIBLE_OPENAI_BASE_URL" in record.getMessage()
