"""The run advisor contract by construction: nothing in the spec service can create or execute a run."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import crucible_spec
from crucible.run.v1 import run_service_pb2 as pb
from crucible_spec.service_layer.architect import RunAdvisor

# The RunService methods a chat may use: a check and reads.
ALLOWED = {"PreflightRun", "ListRuns", "GetRun", "GetRunResults", "GetRunStatistics"}


def test_the_spec_service_names_no_run_service_method_but_preflight_and_reads() -> None:
    methods = set(pb.DESCRIPTOR.services_by_name["RunService"].methods_by_name)
    forbidden = methods - ALLOWED
    assert {"CreateRun", "ExecuteRun", "CancelRun"} <= forbidden
    used: dict[str, list[str]] = {}
    for path in Path(crucible_spec.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            if name in forbidden:
                used.setdefault(str(path), []).append(name)
    assert used == {}


def test_the_run_advisor_port_offers_preflight_and_reads_only() -> None:
    abstract = {
        name for name, member in inspect.getmembers(RunAdvisor) if getattr(member, "__isabstractmethod__", False)
    }
    assert abstract == {"preflight", "recent_runs"}
