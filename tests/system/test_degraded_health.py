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


def test_the_api_token_guards_the_api_but_not_health(tmp_path: Path) -> None:
    env, _, url = stack_env(tmp_path, None)
    env["CRUCIBLE_API_TOKEN"] = "s3cret"
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
                health = httpx.get(f"{url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)
        assert health.status_code == 503  # answered without a token
        missing = httpx.get(f"{url}/api/projects", timeout=5)
        assert missing.status_code == 401
        assert missing.json()["reason"] == "UNAUTHORIZED"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(f"{url}/api/projects", headers={b"Authorization": "Bearer café".encode()}, timeout=5)
        assert wrong.status_code == 401
        right = httpx.get(f"{url}/api/projects", headers={"Authorization": "Bearer s3cret"}, timeout=15)
        assert right.status_code == 503  # past the token check; the spec service is not running
    finally:
        gateway.terminate()
        assert gateway.wait(10) in (0, -15)
