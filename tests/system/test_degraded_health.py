"""/healthz when services are missing: 503 with the list, never a hang or a 500."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import repo_root
from tests.system.conftest import stack_env

pytestmark = pytest.mark.system


def test_gateway_alone_reports_every_service_not_serving(tmp_path: Path) -> None:
    env, _, url = stack_env(tmp_path, None)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "crucible_gateway.main"],
        cwd=repo_root(),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert body["not_serving"] == ["agent", "run", "snapshot", "spec"]
        assert set(body["services"].values()) <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}

        api = httpx.get(f"{url}/api/projects", timeout=15)
        assert api.status_code == 503
        assert api.json()["grpc_code"] == "UNAVAILABLE"
    finally:
        gateway.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM).
        assert gateway.wait(10) in (0, -15)
