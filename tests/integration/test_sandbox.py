"""The test sandbox: real pytest runs in child processes, with hostile test code.

Every test checks afterwards that no process was left behind (neither a child of this process nor a
process of the sandbox user) and that this process's own limits and environment are untouched.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from crucible_agent.adapters import sandbox
from crucible_agent.adapters.sandbox import SandboxLimits, SandboxUnavailable, TestRun, run_tests
from crucible_agent.adapters.workspace import ToolBox, Workspace, WorkspaceError

pytestmark = pytest.mark.integration

LIMITS_CHECKED = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_CORE")
NO_NAMESPACES = sandbox.Isolation((), False, False, False, "network isolation unavailable: switched off by the test")


def processes_working_in(*directories: Path) -> list[psutil.Process]:
    """Live processes whose working directory is under one of ``directories``.

    Sandboxed tests start in their workspace; other suites running at the same time on this machine
    use other directories, so they are not mistaken for ours.
    """
    roots = [str(d) for d in directories]
    found = []
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info["cwd"]
        if cwd and process.info["status"] != psutil.STATUS_ZOMBIE and any(cwd.startswith(r) for r in roots):
            found.append(process)
    return found


@pytest.fixture
def artifacts_root() -> Iterator[Path]:
    """An artifacts root any user may traverse, as the service's is (pytest's tmp_path is private)."""
    root = Path(tempfile.mkdtemp(prefix="crucible-sandbox-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def nothing_left_behind(artifacts_root: Path, tmp_path: Path) -> Iterator[None]:
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in LIMITS_CHECKED}
    environment = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    yield
    children = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    assert children == [], f"stray children: {children}"
    strays = processes_working_in(artifacts_root, tmp_path)
    assert strays == [], f"stray sandbox processes: {[(p.pid, p.info) for p in strays]}"
    assert {name: resource.getrlimit(getattr(resource, name)) for name in LIMITS_CHECKED} == limits
    assert {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"} == environment


@pytest.fixture
def workspace(artifacts_root: Path) -> Workspace:
    return Workspace(artifacts_root, "sprint-1")


def write(workspace: Workspace, name: str, source: str) -> None:
    workspace.write_file(name, textwrap.dedent(source))


FULL = sandbox.probe_isolation()
needs_namespaces = pytest.mark.skipif(not FULL.network, reason=f"no network namespace here: {FULL.note}")
needs_pid_namespace = pytest.mark.skipif(not FULL.pids, reason=f"no PID namespace here: {FULL.note}")
needs_mounts = pytest.mark.skipif(not FULL.mounts, reason="no private mount namespace (needs root and unshare)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop happens only when the service is root")


# ------------------------------------------------------------------ outcomes


async def test_a_passing_test_file_passes(workspace: Workspace) -> None:
    write(
        workspace,
        "test_hello.py",
        """
        from hello import greeting

        def test_greeting():
            assert greeting() == "hello world"

        def test_again():
            assert greeting().startswith("hello")
        """,
    )
    write(workspace, "hello.py", 'def greeting():\n    return "hello world"\n')

    run = await run_tests(workspace.path)

    assert run.passed, run.output
    assert run.exit_code == 0
    assert not run.timed_out
    assert run.summary.startswith("2 passed in ")
    assert run.as_tool_result().startswith("PASSED: 2 passed\n")
    assert run.duration_ms > 0


async def test_a_failing_test_fails_with_its_failure_in_the_output(workspace: Workspace) -> None:
    write(
        workspace,
        "test_math.py",
        """
        def test_ok():
            assert 1 + 1 == 2

        def test_wrong():
            assert 1 + 1 == 3, "arithmetic is broken"
        """,
    )

    run = await run_tests(workspace.path)

    assert not run.passed
    assert run.exit_code == 1
    assert "arithmetic is broken" in run.output
    assert "FAILED test_math.py::test_wrong" in run.output
    assert run.summary.startswith("1 failed, 1 passed in ")
    assert run.as_tool_result().startswith("FAILED: 1 failed, 1 passed\n")


async def test_no_tests_is_not_a_pass(workspace: Workspace) -> None:
    write(workspace, "hello.py", "print('hello')\n")

    run = await run_tests(workspace.path)

    assert not run.passed
    assert run.exit_code == 5
    assert run.summary.startswith("no tests ran")
    assert run.as_tool_result().startswith("FAILED: no tests ran")


async def test_a_target_runs_only_that_file_or_test(workspace: Workspace) -> None:
    write(workspace, "tests/test_a.py", "def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    write(workspace, "test_broken.py", "def test_broken():\n    assert False\n")

    by_file = await run_tests(workspace.path, "tests/test_a.py")
    by_node = await run_tests(workspace.path, "tests/test_a.py::test_two")

    assert by_file.passed
    assert by_file.summary.startswith("2 passed")
    assert by_node.passed
    assert by_node.summary.startswith("1 passed")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("../x", "PARENT_TRAVERSAL"),
        ("/etc", "ABSOLUTE_PATH"),
        ("missing.py", "NOT_FOUND"),
        ("-p", "NOT_FOUND"),
        ("test_x.py::a\x00b", "INVALID_PATH"),
    ],
)
async def test_the_target_is_jailed(workspace: Workspace, target: str, reason: str) -> None:
    with pytest.raises(WorkspaceError) as excinfo:
        await run_tests(workspace.path, target)

    assert excinfo.value.reason == reason


async def test_the_target_cannot_leave_through_a_symlink(workspace: Workspace, artifacts_root: Path) -> None:
    elsewhere = artifacts_root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "test_outside.py").write_text("def test_x():\n    pass\n")
    os.symlink(elsewhere, workspace.path / "linked")

    with pytest.raises(WorkspaceError) as excinfo:
        await run_tests(workspace.path, "linked/test_outside.py")

    assert excinfo.value.reason == "ESCAPES_WORKSPACE"


async def test_configuration_above_the_workspace_is_not_used(workspace: Workspace, artifacts_root: Path) -> None:
    (artifacts_root / "conftest.py").write_text("import os\nos.environ['FROM_ABOVE'] = '1'\n")
    (artifacts_root / "pytest.ini").write_text("[pytest]\naddopts = --this-option-does-not-exist\n")
    write(workspace, "test_env.py", "import os\n\ndef test_clean():\n    assert 'FROM_ABOVE' not in os.environ\n")

    run = await run_tests(workspace.path)

    assert run.passed, run.output


async def test_the_toolbox_runs_the_sandbox(workspace: Workspace) -> None:
    write(workspace, "test_one.py", "def test_one():\n    pass\n")
    tools = ToolBox(workspace, limits=SandboxLimits(wall_seconds=60))

    result = await tools.call("run_tests", {"path": "test_one.py"})
    refused = await tools.call("run_tests", {"path": "../../etc"})

    assert not result.is_error
    assert result.content.startswith("PASSED: 1 passed")
    assert refused.is_error
    assert refused.content == "error: PARENT_TRAVERSAL: path '../../etc' leaves the workspace"


# ------------------------------------------------------------------ what the tests can see


async def test_the_environment_is_scrubbed(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")
    monkeypatch.setenv("CRUCIBLE_DATABASE_URL", "postgresql://u:pw@db/crucible")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    write(
        workspace,
        "test_env.py",
        f"""
        import os

        def test_no_secrets():
            for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CRUCIBLE_DATABASE_URL", "HTTPS_PROXY"):
                assert name not in os.environ, name
            assert not any("test-secret" in value or "pw@db" in value for value in os.environ.values())

        def test_exactly_the_scrubbed_variables():
            own = {{"PYTEST_CURRENT_TEST", "PYTEST_VERSION"}}
            assert set(os.environ) - own == {{
                "PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
            }}
            assert os.environ["PATH"] == "/usr/bin:/bin"
            assert os.environ["HOME"] == os.getcwd() == os.environ["PYTHONPATH"] == {str(workspace.path)!r}
            assert os.environ["LANG"] == "C.UTF-8"

        def test_the_parent_environment_is_out_of_reach():
            try:
                with open("/proc/{os.getpid()}/environ", "rb") as f:
                    data = f.read()
            except OSError:
                data = b""
            assert b"sk-test-secret" not in data
        """,
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output
    assert "sk-test-secret" not in run.output


@needs_root
async def test_the_tests_run_unprivileged_and_the_workspace_is_handed_back(workspace: Workspace) -> None:
    write(
        workspace,
        "test_user.py",
        """
        import os

        def test_not_root():
            assert os.getuid() != 0 and os.geteuid() != 0 and os.getgroups() == []

        def test_can_write_in_the_workspace():
            with open("made_by_the_tests.txt", "w") as f:
                f.write("x")
            os.makedirs("out/deeper", exist_ok=True)
        """,
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output
    assert run.user == sandbox.SANDBOX_USER
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [workspace.path, *workspace.path.rglob("*")]}
    assert owners == {(0, 0)}
    assert (workspace.path / "made_by_the_tests.txt").read_text() == "x"


@needs_root
async def test_set_id_bits_are_cleared_when_the_workspace_is_handed_back(workspace: Workspace) -> None:
    write(
        workspace,
        "test_suid.py",
        """
        import os, shutil

        def test_plant():
            shutil.copy("/bin/true", "planted")
            os.chmod("planted", 0o6755)
        """,
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output
    planted = (workspace.path / "planted").stat()
    assert planted.st_uid == 0
    assert planted.st_mode & (stat.S_ISUID | stat.S_ISGID) == 0


@needs_root
@needs_mounts
async def test_secrets_and_other_workspaces_are_hidden(
    workspace: Workspace, artifacts_root: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the database password")
    other = Workspace(artifacts_root, "sprint-2")
    other.write_file("private.py", "TOKEN = 'other sprint'\n")
    scratch = Path(tempfile.gettempdir(), f"crucible-scratch-{os.getpid()}")
    interpreter_under_root = {Path(p).parts[2] for p in sandbox._interpreter_dirs() if p.startswith("/root/")}
    # When the repository itself lies under /tmp (a CI clone), the way to the interpreter shows too.
    visible_in_tmp = {artifacts_root.name} | {
        Path(p).parts[2] for p in sandbox._interpreter_dirs() if p.startswith("/tmp/")
    }
    write(
        workspace,
        "test_peek.py",
        f"""
        import os, pytest

        def test_no_secret():
            with pytest.raises(OSError):
                open({str(secret)!r}).read()

        def test_no_other_workspace():
            assert os.listdir("..") == ["sprint-1"]
            with pytest.raises(OSError):
                open({str(other.path / "private.py")!r}).read()

        def test_roots_home_shows_at_most_the_way_to_the_interpreter():
            try:
                entries = set(os.listdir("/root"))
            except PermissionError:
                entries = set()
            assert entries <= {interpreter_under_root!r}

        def test_private_tmp():
            # Only the way to the workspace (under /tmp in this test) and to the interpreter.
            assert set(os.listdir("/tmp")) <= {visible_in_tmp!r}
            assert {artifacts_root.name!r} in os.listdir("/tmp")
            with open({str(scratch)!r}, "w") as f:
                f.write("x")
        """,
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output
    assert not await asyncio.to_thread(scratch.exists)


@needs_root
@needs_mounts
async def test_a_workspace_under_a_private_directory_still_runs(tmp_path: Path) -> None:
    # pytest's own tmp_path lies under a 0700 directory the sandbox user cannot enter.
    workspace = Workspace(tmp_path / "artifacts", "sprint-1")
    write(workspace, "test_ok.py", "def test_ok():\n    pass\n")

    run = await run_tests(workspace.path)

    assert run.passed, run.output


@needs_namespaces
async def test_there_is_no_network(workspace: Workspace) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        write(
            workspace,
            "test_net.py",
            f"""
            import socket, pytest

            def test_this_hosts_loopback_is_unreachable():
                with pytest.raises(OSError):
                    socket.create_connection(("127.0.0.1", {port}), timeout=2)

            def test_the_internet_is_unreachable():
                with pytest.raises(OSError):
                    socket.create_connection(("1.1.1.1", 53), timeout=2)
            """,
        )

        run = await run_tests(workspace.path)

    assert run.network_isolated
    assert run.passed, run.output
    assert not any("network" in note for note in run.notes)


# ------------------------------------------------------------------ limits


async def test_an_infinite_loop_is_killed_at_the_wall_clock(workspace: Workspace) -> None:
    write(workspace, "test_loop.py", "def test_forever():\n    while True:\n        pass\n")

    run = await run_tests(workspace.path, limits=SandboxLimits(wall_seconds=3))

    assert run.timed_out
    assert not run.passed
    assert 3000 <= run.duration_ms < 10_000
    assert run.summary == "killed after 3s"
    assert run.as_tool_result().startswith("TIMEOUT: killed after 3s\n")
    assert "killed after 3 s wall clock" in run.notes


async def test_a_sleeping_test_and_its_children_are_killed_at_the_wall_clock(workspace: Workspace) -> None:
    write(
        workspace,
        "test_sleep.py",
        """
        import os, subprocess, time

        def test_sleep():
            subprocess.Popen(["sleep", "300"])
            if os.fork() == 0:
                os.setpgid(0, 0)  # out of the group, still in the session
                time.sleep(300)
            time.sleep(300)
        """,
    )

    run = await run_tests(workspace.path, limits=SandboxLimits(wall_seconds=3))

    assert run.timed_out
    assert run.duration_ms < 10_000


@needs_pid_namespace
async def test_a_daemon_that_left_the_session_dies_with_the_run(workspace: Workspace) -> None:
    write(
        workspace,
        "test_daemon.py",
        """
        import subprocess

        def test_spawn_and_leave():
            subprocess.Popen(["sleep", "300"], start_new_session=True)
        """,
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output


async def test_a_fork_bomb_is_contained(workspace: Workspace) -> None:
    write(
        workspace,
        "test_bomb.py",
        """
        import os, resource

        def test_bomb():
            soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
            with open("/proc/self/uid_map") as f:
                real_root = os.getuid() == 0 and f.read().split()[:2] == ["0", "0"]
            # Detonates only where the process limit is in force: set, and the user not the real root.
            assert not real_root and soft != resource.RLIM_INFINITY and soft <= 64, "not sandboxed"
            while True:
                os.fork()
        """,
    )

    run = await run_tests(workspace.path, limits=SandboxLimits(wall_seconds=20))

    assert not run.passed
    assert run.timed_out or run.exit_code != 0
    if not run.timed_out:
        assert "AssertionError: not sandboxed" not in run.output
        assert "Resource temporarily unavailable" in run.output
    assert await (await asyncio.create_subprocess_exec("true")).wait() == 0


async def test_a_huge_file_hits_the_file_size_limit(workspace: Workspace) -> None:
    write(
        workspace,
        "test_big.py",
        """
        def test_write_50_mib():
            with open("big.bin", "wb") as f:
                f.write(b"x" * (50 << 20))
        """,
    )

    run = await run_tests(workspace.path)

    assert not run.passed
    assert "File too large" in run.output
    assert (workspace.path / "big.bin").stat().st_size <= 10 << 20


async def test_a_huge_allocation_hits_the_memory_limit(workspace: Workspace) -> None:
    write(workspace, "test_memory.py", "def test_two_gib():\n    data = bytearray(2 << 30)\n    assert data\n")

    run = await run_tests(workspace.path)

    assert not run.passed
    assert "MemoryError" in run.output


async def test_the_limits_are_in_force_inside(workspace: Workspace) -> None:
    write(
        workspace,
        "test_limits.py",
        """
        import resource

        def test_limits():
            assert resource.getrlimit(resource.RLIMIT_CPU) == (20, 20)
            assert resource.getrlimit(resource.RLIMIT_AS) == (1 << 30, 1 << 30)
            assert resource.getrlimit(resource.RLIMIT_FSIZE) == (10 << 20, 10 << 20)
            assert resource.getrlimit(resource.RLIMIT_NPROC) == (64, 64)
            assert resource.getrlimit(resource.RLIMIT_NOFILE) == (256, 256)
            assert resource.getrlimit(resource.RLIMIT_CORE) == (0, 0)
        """,
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output


async def test_the_output_keeps_its_tail(workspace: Workspace) -> None:
    write(
        workspace,
        "test_noisy.py",
        """
        def test_noisy():
            print("line\\n" * 100_000)
            assert False, "the end"
        """,
    )

    run = await run_tests(workspace.path, limits=SandboxLimits(output_bytes=16 << 10))

    assert not run.passed
    assert len(run.output) < (16 << 10) + 100
    assert run.output.startswith("[... ")
    assert "the end" in run.output
    assert run.summary.startswith("1 failed")
    assert any(note.startswith("output cut to its last 16384 of ") for note in run.notes)
    assert len(run.as_tool_result(max_chars=2000)) < 2300


async def test_cancelling_the_run_kills_it(workspace: Workspace) -> None:
    write(workspace, "test_slow.py", "import time\n\ndef test_slow():\n    time.sleep(300)\n")

    task = asyncio.create_task(run_tests(workspace.path))
    await asyncio.sleep(2)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    if os.geteuid() == 0:
        assert {p.stat().st_uid for p in [workspace.path, *workspace.path.rglob("*")]} == {0}


async def test_the_event_loop_is_not_blocked(workspace: Workspace) -> None:
    write(workspace, "test_slow.py", "import time\n\ndef test_slow():\n    time.sleep(2)\n")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    run = await run_tests(workspace.path)
    ticker.cancel()

    assert run.passed, run.output
    assert ticks >= run.duration_ms / 50 * 0.5


# ------------------------------------------------------------------ where the platform falls short


@pytest.fixture
def no_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "probe_isolation", lambda: NO_NAMESPACES)


@pytest.fixture
def as_this_user(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a mount namespace the sandbox user cannot reach an interpreter under /root here; the
    # fallback's process handling is exercised as this process's own user instead.
    identity = sandbox._Identity("this-user", os.getuid(), os.getgid(), drop=False)
    monkeypatch.setattr(sandbox, "_sandbox_identity", lambda: identity)


@needs_root
@needs_mounts
async def test_a_setup_that_fails_stops_the_run_before_any_test(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(workspace, "test_ok.py", "def test_ok():\n    pass\n")
    broken = [sandbox._Shadow("/nonexistent-crucible-dir", 0o755, 1 << 20, ())]
    monkeypatch.setattr(sandbox, "_mount_plan", lambda *args: broken)

    with pytest.raises(SandboxUnavailable) as excinfo:
        await run_tests(workspace.path)

    assert excinfo.value.message.startswith(f"{sandbox.SETUP_FAILED_MARKER} [Errno 2]")
    assert "/nonexistent-crucible-dir" in excinfo.value.message


@needs_namespaces
async def test_a_sandbox_killed_before_the_tests_end_is_unavailable_not_failing(workspace: Workspace) -> None:
    # bwrap itself is killed while pytest is held in its conftest: no outcome, so nothing failed.
    # (A CPU limit of 0 s kills bwrap or pytest, whichever the kernel's tick finds first: not a test.)
    write(
        workspace,
        "conftest.py",
        """
        import pathlib, time
        pathlib.Path("collecting").touch()
        time.sleep(60)
        """,
    )
    write(workspace, "test_ok.py", "def test_ok():\n    pass\n")
    # Time to reach the conftest on a loaded machine; the kill ends the run long before.
    running = asyncio.create_task(run_tests(workspace.path, limits=SandboxLimits(wall_seconds=120)))
    try:
        for _ in range(1200):
            if (workspace.path / "collecting").exists() or running.done():
                break
            await asyncio.sleep(0.05)
        ended = running.exception() if running.done() else None
        assert (workspace.path / "collecting").exists(), f"pytest never reached the workspace's conftest: {ended!r}"
        bwraps = [p for p in psutil.Process().children(recursive=True) if p.name() == "bwrap"]
        # The outer bwrap, not the one it started as the namespace's first process.
        outer = [p for p in bwraps if p.ppid() not in {b.pid for b in bwraps}]
        assert len(outer) == 1, bwraps
        outer[0].kill()

        with pytest.raises(SandboxUnavailable) as excinfo:
            await asyncio.wait_for(running, 20)
    finally:
        # A failed check above still ends the sandbox (run_tests kills and sweeps it when cancelled).
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert excinfo.value.message.startswith(sandbox.DIED_MARKER)
    assert "killed by SIGKILL before the tests ended" in excinfo.value.message


@needs_root
async def test_without_namespaces_an_unreachable_directory_stops_the_run(tmp_path: Path, no_namespaces: None) -> None:
    workspace = Workspace(tmp_path / "artifacts", "sprint-1")
    write(workspace, "test_ok.py", "def test_ok():\n    pass\n")

    with pytest.raises(SandboxUnavailable) as excinfo:
        await run_tests(workspace.path)

    assert excinfo.value.reason == "SANDBOX_UNAVAILABLE"
    assert "cannot enter" in excinfo.value.message


async def test_without_namespaces_a_service_that_is_not_root_refuses_to_run_tests(
    workspace: Workspace, no_namespaces: None, as_this_user: None
) -> None:
    # As itself, with no PID or network namespace, the tests could read the service's environment
    # (API keys, database URL) through /proc and send it anywhere: nothing runs.
    write(workspace, "test_ok.py", "def test_ok():\n    pass\n")

    with pytest.raises(SandboxUnavailable) as excinfo:
        await run_tests(workspace.path)

    assert excinfo.value.reason == "SANDBOX_UNAVAILABLE"
    assert "namespaces" in excinfo.value.message
    result = await ToolBox(workspace).call("run_tests", {})
    assert result.is_error
    assert "SANDBOX_UNAVAILABLE" in result.content


@pytest.mark.parametrize(
    ("output", "summary"),
    [
        ("..\n2 passed in 0.01s\n", "2 passed in 0.01s"),
        ("F.\n1 failed, 1 passed in 0.03s\n", "1 failed, 1 passed in 0.03s"),
        ("== 1 passed, 1 warning in 65.20s (0:01:05) ==", "1 passed, 1 warning in 65.20s (0:01:05)"),
        ("\nno tests ran in 0.01s\n", "no tests ran in 0.01s"),
        ("E\n1 error in 0.05s\n", "1 error in 0.05s"),
        ("Traceback ...\nKilled\n", ""),
        ("1 passed in 0.01s\nprinted by a test: 3 apples\n", "1 passed in 0.01s"),
        ("2 passed\n", ""),
    ],
)
def test_the_summary_line(output: str, summary: str) -> None:
    assert sandbox._summary(output)[0] == summary


def test_the_counts_of_a_summary() -> None:
    assert sandbox._summary("3 failed, 2 passed, 1 skipped, 2 errors, 4 warnings, 1 xpassed in 1.00s")[1] == {
        "failed": 3,
        "passed": 2,
        "skipped": 1,
        "error": 2,
        "warning": 4,
        "xpassed": 1,
    }


def test_the_report_for_the_agent() -> None:
    run = TestRun(
        passed=False,
        exit_code=1,
        timed_out=False,
        output="x" * 10_000 + "\nFAILED test_a.py::test_a\n1 failed in 0.10s\n",
        summary="1 failed in 0.10s",
        duration_ms=900,
        network_isolated=False,
        notes=["network isolation unavailable: no unshare command"],
    )

    report = run.as_tool_result(max_chars=100)

    assert report.splitlines()[:4] == [
        "FAILED: 1 failed",
        "note: network isolation unavailable: no unshare command",
        "",
        "[... earlier output omitted ...]",
    ]
    assert report.endswith("FAILED test_a.py::test_a\n1 failed in 0.10s")


@needs_root
def test_the_mount_plan_keeps_only_the_way_to_what_is_needed(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "closed" / "inner" / "lib").mkdir(parents=True)
    (base / "closed" / "other").mkdir()
    (base / "closed").chmod(0o700)
    (base / "private").mkdir()
    (base / "private" / "kept").mkdir()
    (base / "private" / "dropped").mkdir()
    entry = pwd.getpwnam("nobody")
    needed = [str(base / "closed" / "inner" / "lib"), str(base / "private" / "kept")]

    plan = sandbox._mount_plan(needed, {str(base / "private"): (0o1777, 1 << 20)}, entry.pw_uid, entry.pw_gid)

    by_directory = {s.directory: s for s in plan}
    assert by_directory[str(base / "closed")].keep == ("inner",)
    assert by_directory[str(base / "closed")].mode == 0o755
    assert by_directory[str(base / "private")].keep == ("kept",)
    assert by_directory[str(base / "private")].mode == 0o1777
    depths = [len(Path(s.directory).parts) for s in plan]
    assert depths == sorted(depths)


# ------------------------------------------------------------------ the parent


@needs_root
async def test_the_parent_is_unharmed_after_all_of_it(workspace: Workspace) -> None:
    me = os.getpid()
    write(
        workspace,
        "test_hostile.py",
        f"""
        import os, signal

        def test_try_to_kill_the_parent():
            assert os.getuid() != 0, "not sandboxed"
            for target in ({me}, os.getppid()):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass

        def test_try_to_raise_the_limits():
            import resource
            try:
                resource.setrlimit(resource.RLIMIT_NPROC, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            except (ValueError, OSError):
                pass
            assert resource.getrlimit(resource.RLIMIT_NPROC)[0] == 64
        """,
    )

    run = await run_tests(workspace.path, limits=SandboxLimits(wall_seconds=10))

    assert os.getpid() == me
    assert psutil.Process(me).is_running()
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('alive')", stdout=subprocess.PIPE)
    stdout, _ = await child.communicate()
    assert stdout == b"alive\n"
    assert run.exit_code is not None
