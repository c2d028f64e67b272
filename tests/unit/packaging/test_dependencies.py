"""What each process installs follows from the lock file: production services carry no development tool."""

from __future__ import annotations

import tomllib

import pytest

from tests.conftest import repo_root

WEB_SERVER = {"starlette", "uvicorn", "fastapi", "httptools", "watchfiles"}


def _closure(package: str) -> set[str]:
    """Every package ``package`` installs, from uv.lock (optional extras not included)."""
    lock = tomllib.loads((repo_root() / "uv.lock").read_text())
    deps = {p["name"]: [d["name"] for d in p.get("dependencies", [])] for p in lock["package"]}
    seen: set[str] = set()
    pending = [package]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(deps.get(name, []))
    return seen - {package}


@pytest.mark.parametrize("service", ["crucible-agent", "crucible-spec", "crucible-run", "crucible-snapshot"])
def test_a_service_installs_neither_the_emulator_nor_a_web_server(service: str) -> None:
    installed = _closure(service)

    assert "crucible-emulator" not in installed
    assert installed & WEB_SERVER == set()


def test_the_emulator_brings_its_own_web_server() -> None:
    assert {"starlette", "uvicorn"} <= _closure("crucible-emulator")
