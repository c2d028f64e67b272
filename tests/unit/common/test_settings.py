"""The shared settings refuse combinations that cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crucible_common.settings import Settings


def test_leases_default_to_three_heartbeats_per_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRUCIBLE_LEASE_SECONDS", raising=False)
    monkeypatch.delenv("CRUCIBLE_LEASE_HEARTBEAT_SECONDS", raising=False)
    settings = Settings()
    assert (settings.lease_seconds, settings.lease_heartbeat_seconds) == (15.0, 5.0)


def test_a_heartbeat_longer_than_half_the_lease_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUCIBLE_LEASE_SECONDS", "4")
    monkeypatch.setenv("CRUCIBLE_LEASE_HEARTBEAT_SECONDS", "3")
    with pytest.raises(ValidationError, match="at most half"):
        Settings()
    monkeypatch.setenv("CRUCIBLE_LEASE_HEARTBEAT_SECONDS", "1")
    assert Settings().lease_heartbeat_seconds == 1
