"""The running gateway against a property-based API fuzzer, and against clients that misbehave.

schemathesis reads the gateway's own OpenAPI document and sends every operation thousands of
generated requests, valid and invalid, with a fixed seed, then sequences of calls along the links
the document declares (a project made, then read, patched, listed under); any server error, any status the
document does not list, any response that does not match its schema, a 405 whose Allow header
misleads, fails the test (``schemathesis.toml`` says what counts). It runs against a stack of its
own, on a database of its own: a seed reproduces a run only against the same data, and the
generated requests must not meet (and replay) the snapshots other tests create.

Nothing it can reach starts long or paid work: every model is the offline emulator, and the
operations that start runs, sprints, replays and suites name resources by id, which generated ids
never match (a suite over "every snapshot" finds none in this database). So no operation is left out.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_database
from tests.system.conftest import Stack, start_stack

pytestmark = pytest.mark.system

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261126
# Per operation; with the coverage phase's own cases, some 3,000 requests in well under a minute.
MAX_EXAMPLES = 20
MIN_CASES = 1_000
# Short, so that the slow-client tests wait little; loopback requests arrive in microseconds.
HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2


@pytest.fixture(scope="module")
async def fuzz_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_admin_url, "fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def fuzz_stack(fuzz_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("fuzz-stack"),
        fuzz_database_url,
        extra_env={
            "CRUCIBLE_GATEWAY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
            "CRUCIBLE_GATEWAY_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
        },
    )
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def test_the_fuzzer_finds_nothing(fuzz_stack: Stack, tmp_path: Path) -> None:
    documented = httpx.get(f"{fuzz_stack.url}/api/openapi.json", timeout=30).json()
    operations = sum(1 for item in documented["paths"].values() for method in item if method != "parameters")

    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(CONFIG),
            "run",
            f"{fuzz_stack.url}/api/openapi.json",
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
            # One worker: with two, Hypothesis's threads trip a CPython 3.11 bug in ast.parse
            # ("AST constructor recursion depth mismatch") while describing its strategies.
            "--workers",
            "1",
            "--report",
            "json",
            "--report-dir",
            str(tmp_path / "report"),
            "--no-color",
        ],
        # Its caches (.hypothesis, .schemathesis) land in the working directory: not the repo's.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    (report_file,) = (tmp_path / "report").glob("*.json")
    report: dict[str, Any] = json.loads(report_file.read_text())
    assert (report["failures"], report["errors"]) == ([], []), output
    assert report["operations"]["tested"] == report["operations"]["selected"] == operations, output
    assert report["test_cases"]["generated"] >= MIN_CASES, output


def _exchange(stack: Stack, data: bytes) -> bytes:
    """Send ``data`` and read until the gateway closes the connection."""
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def _problem(answer: bytes) -> tuple[str, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode().splitlines()[0], json.loads(body)


def test_headers_that_never_end_get_a_408_and_the_connection_is_closed(fuzz_stack: Stack) -> None:
    answer = _exchange(fuzz_stack, b"GET /api/projects HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")

    status, problem = _problem(answer)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert problem["reason"] == "REQUEST_TIMEOUT"


def test_a_body_shorter_than_its_length_gets_a_408_and_the_connection_is_closed(fuzz_stack: Stack) -> None:
    request = (
        b"POST /api/projects HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"title": '
    )

    status, problem = _problem(_exchange(fuzz_stack, request))

    assert status == "HTTP/1.1 408 Request Timeout"
    assert problem["reason"] == "REQUEST_TIMEOUT"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/api/usage?purpose=%00", None, "query.purpose"),
        ("GET", "/api/usage?project_id=not-a-uuid", None, "query.project_id"),
        ("POST", "/api/projects", b'{"title": "\\ud800"}', "title"),
        ("POST", "/api/projects", b'{"title": "a\\u0000b"}', "title"),
        ("POST", "/api/runs", b'{"project_id": "x", "mode": "full_search"}', "project_id"),
    ],
)
def test_input_no_service_can_store_is_a_400_problem(
    fuzz_stack: Stack, method: str, path: str, body: bytes | None, field: str
) -> None:
    response = httpx.request(
        method, f"{fuzz_stack.url}{path}", content=body, headers={"content-type": "application/json"}, timeout=30
    )

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [v["field"] for v in response.json()["field_violations"]]
