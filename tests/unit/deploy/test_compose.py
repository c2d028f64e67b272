"""deploy/compose.yaml: it parses, names only services and volumes it defines, and checks health with
``crucible healthcheck`` on the address each process binds."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.deploy.deployment import DEPLOY, console_scripts, crucible_env_names, read_yaml

SERVICES = {"postgres", "emulator", "spec", "run", "snapshot", "agent", "gateway"}
GRPC = {"spec": 50051, "run": 50052, "snapshot": 50053, "agent": 50054}
HTTP = {"gateway": 8080, "emulator": 8090}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as compose reads it: YAML anchors and merge keys resolved (PyYAML does both)."""
    loaded: dict[str, Any] = read_yaml(DEPLOY / "compose.yaml")
    return loaded


def test_it_defines_postgres_the_services_the_gateway_and_the_emulator(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    assert all(key.startswith("x-") for key in set(compose) - {"name", "services", "volumes"})


def test_every_dependency_is_a_defined_service_with_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on {dependency}"
            assert condition == {"condition": "service_healthy"}
            assert "healthcheck" in services[dependency], dependency


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in declared, f"{name}: {source}"


def test_every_crucible_process_is_checked_by_crucible_healthcheck_where_it_binds(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "postgres":
            continue
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "crucible", "healthcheck"], name
        (target,) = test[3:]
        environment = service["environment"]
        if name in GRPC:
            assert target == f"127.0.0.1:{GRPC[name]}"
            assert environment[f"CRUCIBLE_{name.upper()}_ADDR"] == f"0.0.0.0:{GRPC[name]}"
        else:
            assert target == f"http://127.0.0.1:{HTTP[name]}/healthz"
            port = environment.get("CRUCIBLE_GATEWAY_PORT") or environment.get("CRUCIBLE_EMULATOR_PORT")
            assert port == str(HTTP[name])


def test_every_crucible_command_is_an_installed_executable(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "postgres":
            continue
        command = service["command"]
        if command[:2] == ["sh", "-c"]:
            command = re.findall(r"exec (\S+)", command[2])
        assert command[-1] in console_scripts(), name
    assert {"crucible"} <= console_scripts()


def test_the_services_dial_each_other_by_service_name(compose: dict[str, Any]) -> None:
    for name in (*GRPC, "gateway"):
        environment = compose["services"][name]["environment"]
        for other, port in GRPC.items():
            if other != name:
                assert environment[f"CRUCIBLE_{other.upper()}_ADDR"] == f"{other}:{port}"


def test_a_provider_without_a_key_is_answered_by_the_emulator(compose: dict[str, Any]) -> None:
    script = compose["services"]["agent"]["command"][2]
    port = compose["services"]["emulator"]["environment"]["CRUCIBLE_EMULATOR_PORT"]

    # `$$` is compose's escape for a `$` the shell sees.
    assert (
        '[ -n "$${OPENAI_API_KEY}$${CRUCIBLE_OPENAI_BASE_URL}" ] || '
        f"export CRUCIBLE_OPENAI_BASE_URL=http://emulator:{port}/openai/v1"
    ) in script
    assert (
        '[ -n "$${ANTHROPIC_API_KEY}$${CRUCIBLE_ANTHROPIC_BASE_URL}" ] || '
        f"export CRUCIBLE_ANTHROPIC_BASE_URL=http://emulator:{port}/anthropic"
    ) in script
    assert script.rstrip().endswith("exec crucible-agent")


def test_the_agent_may_build_its_test_sandbox_and_no_other_container_loosens_anything(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "postgres":
            continue
        assert service["cap_drop"] == ["ALL"]
        assert service["read_only"] is True
        expected = ["no-new-privileges:true"]
        if name == "agent":
            expected += ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"]
        assert service["security_opt"] == expected, name
        assert "user" not in service, "the image's non-root user"
        assert not service.get("privileged")


def test_every_crucible_variable_is_one_a_process_reads(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "postgres":
            continue
        unknown = {v for v in service["environment"] if v.startswith("CRUCIBLE_")} - crucible_env_names()
        assert unknown == set(), f"{name}: {unknown}"


def test_only_the_gateway_is_published(compose: dict[str, Any]) -> None:
    published = {name for name, service in compose["services"].items() if service.get("ports")}

    assert published == {"gateway"}
    assert compose["services"]["gateway"]["ports"] == ["${CRUCIBLE_PUBLISH:-127.0.0.1:8080}:8080"]
