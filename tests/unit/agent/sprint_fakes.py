"""Fakes for sprints: a scripted model that plans, codes and verifies, and an in-memory workspace."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.domain.errors import ProviderError
from crucible_agent.domain.model import LlmRequest, ProviderResponse, Role, TextSink, ToolCall, ToolSpec
from crucible_agent.domain.sprint_errors import ArtifactNotFound
from crucible_agent.domain.sprints import Artifact, TestReport, ToolResult

PLAN = {
    "summary": "print a greeting",
    "steps": ["write hello.py", "test it"],
    "files": ["hello.py", "test_hello.py"],
    "tests": ["test_hello.py"],
    "plan_markdown": "# Plan\n\n1. hello.py\n2. test_hello.py\n",
}


def _response(text: str, calls: tuple[ToolCall, ...] = (), model: str = "m") -> ProviderResponse:
    return ProviderResponse(text, calls, "tool_calls" if calls else "stop", model, 100, 20)


@dataclass
class SprintModel(LlmProvider):
    """One provider's side of a sprint.

    A plan request gets ``PLAN``; a judge picks ``judge_choice`` (or the last candidate). A coding
    turn writes hello.py, runs the tests, then ends with the next entry of ``coder_verdicts``
    (default ``VERIFICATION_SUCCESS``). A verifier turn runs the tests, then answers with the next
    entry of ``verifier_verdicts``. ``fail_on`` names request kinds to answer with an error.
    """

    name: str
    judge_choice: str | None = None
    coder_verdicts: list[str] = field(default_factory=list)
    verifier_verdicts: list[str] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)
    requests: list[LlmRequest] = field(default_factory=list)

    def kind(self, request: LlmRequest) -> str:
        if request.schema_name == "sprint_plan":
            return "plan"
        if request.schema_name == "judge_decision":
            return "judge"
        system = request.messages[0].content
        return "verify" if system.startswith("You are verifying") else "code"

    def calls(self, kind: str) -> list[LlmRequest]:
        return [r for r in self.requests if self.kind(r) == kind]

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        self.requests.append(request)
        kind = self.kind(request)
        if kind in self.fail_on:
            raise ProviderError(self.name, f"{kind} refused")
        if kind == "plan":
            return _response(json.dumps(PLAN), model=request.model)
        if kind == "judge":
            assert request.json_schema is not None
            names: list[str] = request.json_schema["properties"]["choice"]["enum"]
            choice = self.judge_choice or names[-1]
            return _response(json.dumps({"choice": choice, "rationale": f"{choice} plans best"}), model=request.model)
        turns = sum(1 for m in request.messages if m.role is Role.ASSISTANT and m.tool_calls)
        if kind == "code":
            if turns == 0:
                write = ToolCall("w1", "fs_write_file", {"path": "hello.py", "content": "print('Hello, World!')\n"})
                return _response("", (write,), request.model)
            if turns == 1:
                return _response("", (ToolCall("t1", "run_tests", {}),), request.model)
            verdict = self.coder_verdicts.pop(0) if self.coder_verdicts else "VERIFICATION_SUCCESS: hello.py"
            return _response(verdict, model=request.model)
        if turns == 0:
            return _response("", (ToolCall("v1", "run_tests", {}),), request.model)
        verdict = self.verifier_verdicts.pop(0) if self.verifier_verdicts else "VERIFICATION_SUCCESS"
        return _response(verdict, model=request.model)

    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        response = await self.complete(request)
        if response.text:
            await on_text(response.text)
        return response

    async def close(self) -> None:
        return None


@dataclass
class FakeSprintWorkspace:
    """A sprint's files in a dict; the sandboxed test run answers ``reports`` in turn (default: passed)."""

    files: dict[str, str] = field(default_factory=dict)
    reports: list[TestReport] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    test_runs: int = 0

    async def write_file(self, path: str, content: str) -> None:
        self.files[path] = content

    async def artifacts(self) -> list[Artifact]:
        return [Artifact(p, len(c.encode())) for p, c in sorted(self.files.items())]

    async def open_artifact(self, path: str) -> bytes:
        if path not in self.files:
            raise ArtifactNotFound("sprint", path)
        return self.files[path].encode()

    def tools(self, names: tuple[str, ...]) -> tuple[ToolSpec, ...]:
        return tuple(ToolSpec(n, f"the {n} tool", {"type": "object"}) for n in names)

    async def call_tool(self, name: str, arguments: object) -> ToolResult:
        assert isinstance(arguments, dict)
        self.tool_calls.append(name)
        if name == "fs_write_file":
            await self.write_file(arguments["path"], arguments["content"])
            return ToolResult(f"wrote {arguments['path']}")
        if name == "run_tests":
            report = await self.run_tests()
            return ToolResult(("PASSED: " if report.passed else "FAILED: ") + report.summary)
        if name == "fs_read_file":
            return ToolResult(self.files.get(arguments["path"], ""))
        return ToolResult(f"error: UNKNOWN_TOOL: {name}", True)

    async def run_tests(self) -> TestReport:
        self.test_runs += 1
        return self.reports.pop(0) if self.reports else report(True)


def report(passed: bool) -> TestReport:
    summary = "1 passed" if passed else "1 failed"
    return TestReport(passed, 0 if passed else 1, False, summary, 12, True, (), f"== {summary} ==")


@dataclass
class FakeWorkspaces:
    workspace: FakeSprintWorkspace = field(default_factory=FakeSprintWorkspace)
    opened: list[str] = field(default_factory=list)

    def open(self, ref: str) -> FakeSprintWorkspace:
        self.opened.append(ref)
        return self.workspace


Hook = Callable[[], None]
