"""A stopping service's draining steps: each one runs, whatever another one does."""

from __future__ import annotations

import pytest

from crucible_common.runtime import drain


async def test_a_failing_draining_step_costs_neither_the_others_nor_the_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    async def first() -> None:
        ran.append("first")
        raise RuntimeError("the listener had failed")

    async def second() -> None:
        ran.append("second")

    await drain("crucible-test", [first, second])

    assert ran == ["first", "second"]
    assert "crucible-test: a draining step failed; stopping anyway" in caplog.text
    assert "the listener had failed" in caplog.text
