"""Runs to test with, built as the repository returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crucible_run.domain.model import Run, RunMode, RunParameters, RunStatus, Trigger, TriggerSource

AT = datetime(2026, 1, 2, tzinfo=UTC)


def a_run(
    status: RunStatus = RunStatus.FAILED, source: TriggerSource = TriggerSource.RUN_CONFIG_PANEL, **fields: Any
) -> Run:
    return Run(
        **{
            "id": "11111111-2222-4333-8444-555555555555",
            "project_id": "66666666-7777-4888-9999-000000000000",
            "mode": RunMode.FULL_SEARCH,
            "parameters": RunParameters(2, 2),
            "status": status,
            "trigger": Trigger("t", source, {}, AT),
            "chat_session_id": "",
            "recommended_message_id": "",
            "recommended_config_snapshot": None,
            "created_at": AT,
            **fields,
        }
    )
