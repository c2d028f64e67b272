"""Workspace: the path jail, the size and count limits, and the agent's tools over it (a fake test runner)."""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from crucible_agent.adapters.sandbox import SandboxLimits, SandboxUnavailable
from crucible_agent.adapters.workspace import (
    ToolBox,
    Workspace,
    WorkspaceError,
    WorkspaceLimits,
    jail,
)
from crucible_agent.domain.sprints import Artifact

LOGGER = "crucible_agent.adapters.workspace"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "artifacts", "sprint-1")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the workspace holding a secret the agent must never see."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text("the database password")
    return directory


def refusal(excinfo: pytest.ExceptionInfo[WorkspaceError]) -> str:
    return excinfo.value.reason


def reason_of(operation: Callable[[], object]) -> str:
    with pytest.raises(WorkspaceError) as excinfo:
        operation()
    return excinfo.value.reason


# ------------------------------------------------------------------ normal use


def test_the_workspace_is_a_directory_per_ref_open_to_the_sandbox_user(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "artifacts", "sprint-1")

    assert workspace.path == (tmp_path / "artifacts" / "sprint-1").resolve()
    assert stat.S_IMODE(workspace.path.stat().st_mode) == 0o755


@pytest.mark.parametrize("ref", ["", "../x", "a/b", "a b", "x" * 101, ".", "..", "sprint.1", "\x00"])
def test_refs_that_are_not_slugs_are_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(WorkspaceError) as excinfo:
        Workspace(tmp_path, ref)

    assert refusal(excinfo) == "INVALID_REF"


def test_write_then_read_list_and_artifacts(workspace: Workspace) -> None:
    assert workspace.write_file("hello.py", 'print("hello world")\n') == "wrote hello.py (21 bytes)"
    assert workspace.write_file("./tests/test_hello.py", "def test_x():\n    pass\n") == (
        "wrote tests/test_hello.py (23 bytes)"
    )
    (workspace.path / "__pycache__").mkdir()
    (workspace.path / "__pycache__" / "hello.cpython-311.pyc").write_bytes(b"\0")

    assert workspace.read_file("hello.py") == 'print("hello world")\n'
    assert workspace.list_dir() == "hello.py  21 bytes\ntests/"
    assert workspace.list_dir("tests") == "test_hello.py  23 bytes"
    assert workspace.artifacts() == [Artifact("hello.py", 21), Artifact("tests/test_hello.py", 23)]
    assert workspace.open_artifact("tests/test_hello.py") == b"def test_x():\n    pass\n"


def test_a_rewrite_replaces_the_whole_file(workspace: Workspace) -> None:
    workspace.write_file("a.txt", "a long first version")
    workspace.write_file("a.txt", "short")

    assert workspace.read_file("a.txt") == "short"
    assert stat.S_IMODE((workspace.path / "a.txt").stat().st_mode) == 0o644


def test_an_empty_directory_says_so(workspace: Workspace) -> None:
    assert workspace.list_dir(".") == "(empty directory)"


def test_a_symlink_that_stays_inside_is_followed(workspace: Workspace) -> None:
    workspace.write_file("src/app.py", "x = 1\n")
    os.symlink("src", workspace.path / "code")

    assert workspace.read_file("code/app.py") == "x = 1\n"


def test_bytes_that_are_not_utf8_are_read_with_replacement_characters(workspace: Workspace) -> None:
    (workspace.path / "data.bin").write_bytes(b"ok \xff\xfe")

    assert workspace.read_file("data.bin") == "ok \ufffd\ufffd"


# ------------------------------------------------------------------ the jail


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../x", "PARENT_TRAVERSAL"),
        ("a/../../x", "PARENT_TRAVERSAL"),
        ("a/..", "PARENT_TRAVERSAL"),
        ("..", "PARENT_TRAVERSAL"),
        ("/etc/passwd", "ABSOLUTE_PATH"),
        ("//etc/passwd", "ABSOLUTE_PATH"),
        ("", "INVALID_PATH"),
        ("hello\x00.py", "INVALID_PATH"),
        ("new\nline.py", "INVALID_PATH"),
        ("x" * 2000, "INVALID_PATH"),
        ("d/" + "x" * 256, "INVALID_PATH"),
    ],
)
def test_paths_that_leave_or_make_no_sense_are_refused_for_every_operation(
    workspace: Workspace, path: str, reason: str
) -> None:
    assert reason_of(lambda: workspace.read_file(path)) == reason
    assert reason_of(lambda: workspace.write_file(path, "x")) == reason
    assert reason_of(lambda: workspace.list_dir(path)) == reason
    assert reason_of(lambda: workspace.open_artifact(path)) == reason
    assert not (workspace.path.parent / "x").exists()


@pytest.mark.parametrize("path", [None, 3, ["a"], b"hello.py"])
def test_a_path_that_is_not_a_string_is_refused(workspace: Workspace, path: object) -> None:
    with pytest.raises(WorkspaceError) as excinfo:
        workspace.read_file(path)  # type: ignore[arg-type]

    assert refusal(excinfo) == "INVALID_PATH"


def test_the_messages_tell_the_agent_what_was_wrong(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceError) as excinfo:
        workspace.read_file("../x")

    assert str(excinfo.value) == "PARENT_TRAVERSAL: path '../x' leaves the workspace"
    assert excinfo.value.message == "path '../x' leaves the workspace"


def test_a_symlink_to_etc_is_refused(workspace: Workspace) -> None:
    os.symlink("/etc", workspace.path / "etc")

    assert reason_of(lambda: workspace.read_file("etc/passwd")) == "ESCAPES_WORKSPACE"
    assert reason_of(lambda: workspace.list_dir("etc")) == "ESCAPES_WORKSPACE"
    assert reason_of(lambda: workspace.write_file("etc/crucible-test", "x")) == "ESCAPES_WORKSPACE"
    assert not Path("/etc/crucible-test").exists()


def test_a_symlink_to_a_file_outside_is_neither_read_nor_written_through(workspace: Workspace, outside: Path) -> None:
    os.symlink(outside / "secret.txt", workspace.path / "notes.txt")

    with pytest.raises(WorkspaceError) as read:
        workspace.read_file("notes.txt")
    with pytest.raises(WorkspaceError) as written:
        workspace.write_file("notes.txt", "overwritten")

    assert refusal(read) == refusal(written) == "ESCAPES_WORKSPACE"
    assert "password" not in str(read.value)
    assert (outside / "secret.txt").read_text() == "the database password"


def test_a_relative_symlink_climbing_out_is_refused(workspace: Workspace, outside: Path) -> None:
    os.symlink("../../outside/secret.txt", workspace.path / "up.txt")

    with pytest.raises(WorkspaceError) as excinfo:
        workspace.read_file("up.txt")

    assert refusal(excinfo) == "ESCAPES_WORKSPACE"


def test_a_symlinked_directory_outside_is_refused(workspace: Workspace, outside: Path) -> None:
    os.symlink(outside, workspace.path / "lib")

    assert reason_of(lambda: workspace.read_file("lib/secret.txt")) == "ESCAPES_WORKSPACE"
    assert reason_of(lambda: workspace.list_dir("lib")) == "ESCAPES_WORKSPACE"
    assert reason_of(lambda: workspace.write_file("lib/planted.py", "x")) == "ESCAPES_WORKSPACE"
    assert reason_of(lambda: workspace.write_file("lib/new/planted.py", "x")) == "ESCAPES_WORKSPACE"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_a_dangling_symlink_pointing_outside_is_not_created_through(workspace: Workspace, tmp_path: Path) -> None:
    os.symlink(tmp_path / "created-outside.txt", workspace.path / "dangling.txt")

    with pytest.raises(WorkspaceError) as excinfo:
        workspace.write_file("dangling.txt", "x")

    assert refusal(excinfo) == "ESCAPES_WORKSPACE"
    assert not (tmp_path / "created-outside.txt").exists()


def test_a_symlink_loop_is_refused(workspace: Workspace) -> None:
    os.symlink("b", workspace.path / "a")
    os.symlink("a", workspace.path / "b")

    with pytest.raises(WorkspaceError) as excinfo:
        workspace.read_file("a")

    # The same refusal whichever Python (3.11 raises on the loop, 3.13 leaves the link unresolved).
    assert refusal(excinfo) == "ESCAPES_WORKSPACE"


def test_a_symlink_loop_inside_a_path_is_refused(workspace: Workspace) -> None:
    os.symlink("a", workspace.path / "a")

    with pytest.raises(WorkspaceError) as reading:
        workspace.read_file("a/x")
    with pytest.raises(WorkspaceError) as writing:
        workspace.write_file("a/x", "x")

    assert refusal(reading) == refusal(writing) == "ESCAPES_WORKSPACE"


def test_symlinks_are_not_artifacts_and_are_marked_in_listings(workspace: Workspace, outside: Path) -> None:
    workspace.write_file("real.txt", "x")
    os.symlink(outside / "secret.txt", workspace.path / "link.txt")

    assert workspace.artifacts() == [Artifact("real.txt", 1)]
    assert workspace.list_dir() == "link.txt  (symlink)\nreal.txt  1 bytes"


def test_a_fifo_is_not_a_regular_file(workspace: Workspace) -> None:
    os.mkfifo(workspace.path / "pipe")

    # a FIFO opened for reading would block: the refusal comes first
    assert reason_of(lambda: workspace.read_file("pipe")) == "NOT_A_REGULAR_FILE"
    assert reason_of(lambda: workspace.write_file("pipe", "x")) == "NOT_A_REGULAR_FILE"
    assert reason_of(lambda: workspace.open_artifact("pipe")) == "NOT_A_REGULAR_FILE"
    assert workspace.artifacts() == []
    assert workspace.list_dir() == "pipe  (FIFO)"


def test_a_socket_is_not_a_regular_file(workspace: Workspace) -> None:
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(workspace.path / "sock"))

        assert reason_of(lambda: workspace.read_file("sock")) == "NOT_A_REGULAR_FILE"
        assert reason_of(lambda: workspace.write_file("sock", "x")) == "NOT_A_REGULAR_FILE"
        assert workspace.list_dir() == "sock  (socket)"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can create a device file")
def test_a_device_file_is_not_a_regular_file(workspace: Workspace) -> None:
    os.mknod(workspace.path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))

    with pytest.raises(WorkspaceError) as excinfo:
        workspace.read_file("null")

    assert refusal(excinfo) == "NOT_A_REGULAR_FILE"
    assert "character device" in excinfo.value.message


def test_a_hard_link_is_neither_read_nor_written(workspace: Workspace, outside: Path) -> None:
    os.link(outside / "secret.txt", workspace.path / "linked.txt")

    with pytest.raises(WorkspaceError) as read:
        workspace.read_file("linked.txt")
    with pytest.raises(WorkspaceError) as written:
        workspace.write_file("linked.txt", "overwritten")

    assert refusal(read) == refusal(written) == "NOT_A_REGULAR_FILE"
    assert (outside / "secret.txt").read_text() == "the database password"


def test_a_directory_is_listed_not_read(workspace: Workspace) -> None:
    workspace.write_file("pkg/__init__.py", "")

    with pytest.raises(WorkspaceError) as read:
        workspace.read_file("pkg")
    with pytest.raises(WorkspaceError) as written:
        workspace.write_file("pkg", "x")
    with pytest.raises(WorkspaceError) as root:
        workspace.read_file(".")

    assert refusal(read) == refusal(written) == refusal(root) == "NOT_A_REGULAR_FILE"
    assert "fs_list_dir" in read.value.message


def test_a_file_is_not_a_directory(workspace: Workspace) -> None:
    workspace.write_file("hello.py", "x")

    with pytest.raises(WorkspaceError) as listed:
        workspace.list_dir("hello.py")
    with pytest.raises(WorkspaceError) as nested:
        workspace.write_file("hello.py/inner.py", "x")

    assert refusal(listed) == refusal(nested) == "NOT_A_DIRECTORY"


def test_missing_files_are_not_found(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceError) as read:
        workspace.read_file("missing.py")
    with pytest.raises(WorkspaceError) as listed:
        workspace.list_dir("missing")

    assert refusal(read) == refusal(listed) == "NOT_FOUND"


# ------------------------------------------------------------------ limits


def test_a_huge_write_is_refused_and_nothing_is_written(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceError) as excinfo:
        workspace.write_file("big.txt", "x" * (1024 * 1024 + 1))

    assert refusal(excinfo) == "TOO_LARGE"
    assert not (workspace.path / "big.txt").exists()


def test_the_write_limit_counts_bytes_not_characters(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, "w", WorkspaceLimits(max_write_bytes=10))

    assert workspace.write_file("ok.txt", "é" * 5) == "wrote ok.txt (10 bytes)"
    with pytest.raises(WorkspaceError) as excinfo:
        workspace.write_file("big.txt", "é" * 6)

    assert refusal(excinfo) == "TOO_LARGE"


def test_a_huge_read_is_refused(workspace: Workspace) -> None:
    (workspace.path / "big.log").write_bytes(b"x" * (1024 * 1024 + 1))

    with pytest.raises(WorkspaceError) as excinfo:
        workspace.read_file("big.log")

    assert refusal(excinfo) == "TOO_LARGE"
    assert workspace.open_artifact("big.log") == b"x" * (1024 * 1024 + 1)


def test_downloads_have_their_own_limit(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, "w", WorkspaceLimits(max_download_bytes=4))
    (workspace.path / "out.bin").write_bytes(b"12345")

    with pytest.raises(WorkspaceError) as excinfo:
        workspace.open_artifact("out.bin")

    assert refusal(excinfo) == "TOO_LARGE"


def test_too_many_files(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, "w", WorkspaceLimits(max_files=3))
    for name in ("a.py", "b.py", "c.py"):
        workspace.write_file(name, "")

    with pytest.raises(WorkspaceError) as excinfo:
        workspace.write_file("d.py", "")

    assert refusal(excinfo) == "TOO_MANY_FILES"
    assert workspace.write_file("a.py", "rewriting an existing file is fine") == "wrote a.py (34 bytes)"
    (workspace.path / "e.py").write_text("written by the tests")
    with pytest.raises(WorkspaceError) as listed:
        workspace.artifacts()
    assert refusal(listed) == "TOO_MANY_FILES"
    assert workspace.list_dir() == "a.py  34 bytes\nb.py  0 bytes\nc.py  0 bytes\n... 1 more entries"


@pytest.mark.parametrize("content", [None, 42, b"bytes", ["x"]])
def test_content_that_is_not_a_string_is_refused(workspace: Workspace, content: object) -> None:
    with pytest.raises(WorkspaceError) as excinfo:
        workspace.write_file("x.py", content)  # type: ignore[arg-type]

    assert refusal(excinfo) == "INVALID_CONTENT"
    assert not (workspace.path / "x.py").exists()


def test_content_that_cannot_be_encoded_is_refused(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceError) as excinfo:
        workspace.write_file("x.py", "lone surrogate \ud800")

    assert refusal(excinfo) == "INVALID_CONTENT"


# ------------------------------------------------------------------ logging


def test_every_refusal_is_logged(workspace: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    os.symlink("/etc", workspace.path / "etc")
    os.mkfifo(workspace.path / "pipe")
    attempts = [
        ("../x", "PARENT_TRAVERSAL"),
        ("/etc/passwd", "ABSOLUTE_PATH"),
        ("etc/passwd", "ESCAPES_WORKSPACE"),
        ("pipe", "NOT_A_REGULAR_FILE"),
        ("missing.py", "NOT_FOUND"),
        ("a\x00b", "INVALID_PATH"),
    ]
    caplog.set_level(logging.WARNING, logger=LOGGER)

    for path, reason in attempts:
        with pytest.raises(WorkspaceError):
            workspace.read_file(path)
        record = caplog.records[-1]
        assert record.name == LOGGER
        assert record.levelno == logging.WARNING
        assert record.getMessage().startswith(f"workspace sprint-1 refused read {path!r}: {reason}: ")
    assert len(caplog.records) == len(attempts)


def test_the_jail_function_refuses_and_logs_on_its_own(workspace: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)

    with pytest.raises(WorkspaceError) as excinfo:
        jail(workspace.path, "missing/test_x.py", operation="run_tests", must_exist=True)

    assert refusal(excinfo) == "NOT_FOUND"
    assert caplog.records[-1].getMessage().startswith("workspace sprint-1 refused run_tests 'missing/test_x.py'")
    assert jail(workspace.path, "./tests//x.py", operation="run_tests") == workspace.path / "tests" / "x.py"


# ------------------------------------------------------------------ the tools


class FakeReport:
    def __init__(self, text: str) -> None:
        self.text = text

    def as_tool_result(self) -> str:
        return self.text


class FakeRunner:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[Path, str | None, SandboxLimits]] = []
        self.error = error

    async def __call__(self, workspace_dir: Path, target: str | None, *, limits: SandboxLimits) -> FakeReport:
        self.calls.append((workspace_dir, target, limits))
        if self.error is not None:
            raise self.error
        return FakeReport("PASSED: 1 passed")


def test_the_tools_and_their_schemas(workspace: Workspace) -> None:
    specs = ToolBox(workspace, runner=FakeRunner()).tool_specs()

    assert [name for name, _, _ in specs] == ["fs_read_file", "fs_write_file", "fs_list_dir", "run_tests"]
    by_name = {s.name: s for s in specs}
    assert by_name["fs_write_file"].parameters["required"] == ["path", "content"]
    assert by_name["fs_read_file"].parameters["required"] == ["path"]
    assert "required" not in by_name["fs_list_dir"].parameters
    assert by_name["run_tests"].parameters["properties"]["path"]["type"] == ["string", "null"]
    assert all(s.description and s.parameters["additionalProperties"] is False for s in specs)


async def test_tool_calls_reach_the_workspace(workspace: Workspace) -> None:
    tools = ToolBox(workspace, runner=FakeRunner())

    written = await tools.call("fs_write_file", {"path": "hello.py", "content": "print('hi')\n"})
    read = await tools.call("fs_read_file", {"path": "hello.py"})
    listed = await tools.call("fs_list_dir", {})

    assert (written.content, written.is_error) == ("wrote hello.py (12 bytes)", False)
    assert (read.content, read.is_error) == ("print('hi')\n", False)
    assert (listed.content, listed.is_error) == ("hello.py  12 bytes", False)


async def test_run_tests_goes_to_the_runner_with_the_limits(workspace: Workspace) -> None:
    runner = FakeRunner()
    limits = SandboxLimits(wall_seconds=5)
    tools = ToolBox(workspace, limits=limits, runner=runner)

    everything = await tools.call("run_tests", {})
    one = await tools.call("run_tests", {"path": "test_hello.py"})
    explicit_none = await tools.call("run_tests", {"path": None})

    assert everything.content == one.content == explicit_none.content == "PASSED: 1 passed"
    assert runner.calls == [
        (workspace.path, None, limits),
        (workspace.path, "test_hello.py", limits),
        (workspace.path, None, limits),
    ]


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("rm_rf", {"path": "."}, "error: UNKNOWN_TOOL: there is no tool 'rm_rf'"),
        ("fs_read_file", {}, "error: INVALID_ARGUMENTS: fs_read_file: 'path' is a required property"),
        ("fs_read_file", {"path": 3}, "error: INVALID_ARGUMENTS: fs_read_file: 3 is not of type 'string'"),
        ("fs_write_file", {"path": "a.py"}, "error: INVALID_ARGUMENTS: fs_write_file: 'content' is a required"),
        ("fs_write_file", {"path": "a.py", "content": None}, "error: INVALID_ARGUMENTS: fs_write_file: None is not"),
        ("fs_list_dir", {"path": ".", "recursive": True}, "error: INVALID_ARGUMENTS: fs_list_dir: Additional prop"),
        ("fs_list_dir", "not an object", "error: INVALID_ARGUMENTS: fs_list_dir: arguments must be an object"),
        ("fs_list_dir", None, "error: INVALID_ARGUMENTS: fs_list_dir: arguments must be an object, not null"),
        ("run_tests", {"path": 1}, "error: INVALID_ARGUMENTS: run_tests: 1 is not of type"),
        ("fs_read_file", {"path": "../x"}, "error: PARENT_TRAVERSAL: path '../x' leaves the workspace"),
        ("fs_read_file", {"path": "/etc/passwd"}, "error: ABSOLUTE_PATH: path '/etc/passwd' is absolute"),
        ("fs_read_file", {"path": "nope.py"}, "error: NOT_FOUND: no such file: 'nope.py'"),
        ("fs_write_file", {"path": "x", "content": "x" * (1 << 21)}, "error: TOO_LARGE: content is"),
        ("fs_list_dir", {"path": "a\x00"}, "error: INVALID_PATH: path contains a NUL byte"),
    ],
)
async def test_bad_tool_input_becomes_an_error_result_never_an_exception(
    workspace: Workspace, name: str, arguments: object, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)

    result = await ToolBox(workspace, runner=FakeRunner()).call(name, arguments)

    assert result.is_error
    assert result.content.startswith(expected), result.content
    assert caplog.records, "the refusal is logged"


async def test_a_sandbox_that_cannot_run_is_an_error_result(workspace: Workspace) -> None:
    runner = FakeRunner(SandboxUnavailable("no way to drop privileges here"))

    result = await ToolBox(workspace, runner=runner).call("run_tests", {})

    assert result.is_error
    assert result.content == "error: SANDBOX_UNAVAILABLE: no way to drop privileges here"


async def test_a_symlink_escape_through_the_tools(workspace: Workspace, outside: Path) -> None:
    os.symlink(outside, workspace.path / "lib")
    tools = ToolBox(workspace, runner=FakeRunner())

    read = await tools.call("fs_read_file", {"path": "lib/secret.txt"})
    written = await tools.call("fs_write_file", {"path": "lib/x.py", "content": "x"})

    assert read.is_error
    assert read.content.startswith("error: ESCAPES_WORKSPACE: ")
    assert written.is_error
    assert written.content.startswith("error: ESCAPES_WORKSPACE: ")
    assert "password" not in read.content


async def test_the_tools_can_be_called_as_methods(workspace: Workspace) -> None:
    tools = ToolBox(workspace, runner=FakeRunner())

    assert await tools.fs_write_file("a.py", "x = 1\n") == "wrote a.py (6 bytes)"
    assert await tools.fs_read_file("a.py") == "x = 1\n"
    assert await tools.fs_list_dir() == "a.py  6 bytes"
    assert await tools.run_tests() == "PASSED: 1 passed"
    with pytest.raises(WorkspaceError) as excinfo:
        await tools.fs_read_file("../a.py")
    assert refusal(excinfo) == "PARENT_TRAVERSAL"
