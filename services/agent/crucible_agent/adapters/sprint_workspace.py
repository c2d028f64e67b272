"""Sprint workspaces on this host's filesystem: the ``Workspaces`` port over ``Workspace``, ``ToolBox`` and the sandbox.

Workspace refusals become the context's errors here, once: a path the caller got wrong is a bad
request, a missing file is NOT_FOUND, a workspace that cannot be read is UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from crucible_agent.adapters import sandbox
from crucible_agent.adapters.sandbox import SandboxLimits
from crucible_agent.adapters.workspace import ToolBox, Workspace, WorkspaceError
from crucible_agent.domain.model import ToolSpec
from crucible_agent.domain.sprint_errors import ArtifactNotFound
from crucible_agent.domain.sprints import Artifact, TestReport, ToolResult
from crucible_common.errors import CrucibleError, FieldViolation, InvalidArgument, Unavailable

# What a report keeps of pytest's output.
REPORT_OUTPUT_CHARS = 4000


class LocalWorkspaces:
    """One directory per sprint under ``root`` (a shared volume when several replicas run sprints)."""

    def __init__(self, root: Path, limits: SandboxLimits) -> None:
        self._root = root
        self._limits = limits

    def open(self, ref: str) -> LocalSprintWorkspace:
        return LocalSprintWorkspace(Workspace(self._root, ref), self._limits)


class LocalSprintWorkspace:
    def __init__(self, workspace: Workspace, limits: SandboxLimits) -> None:
        self._workspace = workspace
        self._limits = limits
        self._toolbox = ToolBox(workspace, limits=limits)

    async def write_file(self, path: str, content: str) -> None:
        try:
            await asyncio.to_thread(self._workspace.write_file, path, content)
        except WorkspaceError as exc:
            raise _failure(exc) from exc

    async def artifacts(self) -> list[Artifact]:
        try:
            return await asyncio.to_thread(self._workspace.artifacts)
        except WorkspaceError as exc:
            raise _failure(exc) from exc

    async def open_artifact(self, path: str) -> bytes:
        try:
            return await asyncio.to_thread(self._workspace.open_artifact, path)
        except WorkspaceError as exc:
            if exc.reason == "NOT_FOUND":
                raise ArtifactNotFound(self._workspace.ref, path) from exc
            raise _failure(exc) from exc

    def tools(self, names: tuple[str, ...]) -> tuple[ToolSpec, ...]:
        return tuple(ToolSpec(n, d, p) for n, d, p in self._toolbox.tool_specs() if n in names)

    async def call_tool(self, name: str, arguments: object) -> ToolResult:
        return await self._toolbox.call(name, arguments)

    async def run_tests(self) -> TestReport:
        run = await sandbox.run_tests(self._workspace.path, None, limits=self._limits)
        return TestReport(
            passed=run.passed,
            exit_code=run.exit_code,
            timed_out=run.timed_out,
            summary=run.summary,
            duration_ms=run.duration_ms,
            network_isolated=run.network_isolated,
            notes=tuple(run.notes),
            output=run.output[-REPORT_OUTPUT_CHARS:],
        )


def _failure(exc: WorkspaceError) -> CrucibleError:
    """A refused path is the caller's mistake; anything else is the server's."""
    if exc.reason in ("IO_ERROR", "TOO_MANY_FILES"):
        return Unavailable(f"the sprint's workspace cannot be read: {exc.message}", reason=f"WORKSPACE_{exc.reason}")
    return InvalidArgument(
        f"{exc.reason}: {exc.message}", violations=[FieldViolation("path", exc.message)], reason=exc.reason
    )
