"""Running the agent's tests: pytest in a child process that can harm neither this process nor the host.

The child is started through layers, each where the platform allows it (the result says which were
missing):

* ``timeout -s KILL``: a backstop that ends the run even if this process dies before its own timer;
* ``unshare --net --mount --pid --fork --mount-proc --kill-child``: no network at all (loopback
  included), a private mount table and a PID namespace whose processes all die with its first one;
* a short Python stage, still privileged, that lays tmpfs over the directories the tests must not
  see (``/tmp``, the other workspaces) or that the sandbox user cannot enter (an interpreter under
  ``/root``), binding back only what pytest needs, then sets resource limits, drops to an
  unprivileged user, forbids regaining privileges and execs pytest with a scrubbed environment.

The child is the leader of its own session. On a timeout its process group is killed; after every
run, whatever is left in the session is found and killed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import logging
import os
import pwd
import re
import resource
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
SETUP_FAILED_EXIT = 71
SETUP_FAILED_MARKER = "crucible-sandbox setup failed:"
# The backstop fires only when this process did not end the run itself.
BACKSTOP_GRACE_SECONDS = 15.0
PRIVATE_TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# Found in the workspace, pytest's own configuration is used; else none, never a parent directory's.
PYTEST_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
_CHILD_BOOT = "import sys; from crucible_agent.adapters.sandbox import child_main; sys.exit(child_main(sys.argv[1]))"
_OUTCOME = r"\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected|reruns?)"
# The last line of a pytest run: "1 failed, 2 passed, 1 warning in 0.10s", "no tests ran in 0.01s".
_SUMMARY_LINE = re.compile(
    rf"^=*\s*(?P<summary>(?:no tests ran|{_OUTCOME}(?:, {_OUTCOME})*) in [\d.]+s(?: \([\d:]+\))?)\s*=*$"
)
_COUNT = re.compile(r"(\d+) ([a-z]+)")

# Linux constants ctypes has no names for.
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_BIND = 0x1000
_MS_REC = 0x4000
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38


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
    """The platform cannot run the tests safely; nothing was run."""

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
    """What ``unshare`` can do here: the command prefix that does it, and what is missing."""

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
    if not identity.drop:
        # Not root: the tests run as the service's own user, who can read the service's
        # /proc/<pid>/environ (API keys, database URL). Only PID and network namespaces keep
        # that out of sight and out of reach; without them, refuse rather than run.
        if not (isolation.pids and isolation.network):
            message = (
                "the service does not run as root and cannot create PID and network namespaces here, so"
                " untrusted tests would see its environment; run it as root or allow unprivileged `unshare`"
            )
            logger.error("sandbox unavailable: %s", message)
            raise SandboxUnavailable(message)
        return workspace, target_arg, isolation, identity, []
    needed = [*_interpreter_dirs(), str(workspace)]
    if isolation.mounts:
        shadows = _mount_plan(needed, _private_dirs(workspace, limits), identity.uid, identity.gid)
        return workspace, target_arg, isolation, identity, shadows
    blocked = _mount_plan(needed, {}, identity.uid, identity.gid)
    if blocked:
        message = (
            f"user {identity.name} cannot enter {blocked[0].directory}, which the tests need, and there is"
            " no mount namespace here to expose it; make it traversable or allow `unshare --mount`"
        )
        logger.error("sandbox unavailable: %s", message)
        raise SandboxUnavailable(message)
    return workspace, target_arg, isolation, identity, []


@functools.cache
def probe_isolation() -> Isolation:
    """The strongest namespace set ``unshare`` grants here (probed once): all, the network only, or none."""
    unshare, true = shutil.which("unshare"), shutil.which("true")
    if unshare is None or true is None:
        return Isolation((), False, False, False, "network isolation unavailable: no unshare command")
    root = os.geteuid() == 0
    # Unprivileged, unshare needs a user namespace of its own to create the others.
    user = [] if root else ["--user", "--map-root-user"]
    full = [unshare, *user, "--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child"]
    errors = []
    for prefix, pids in ((full, True), ([unshare, *user, "--net"], False)):
        try:
            probe = subprocess.run([*prefix, "--", true], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(str(exc))
            continue
        if probe.returncode == 0:
            note = "" if pids else "no PID namespace here: stray processes are found by their session only"
            return Isolation((*prefix, "--"), True, pids, pids and root, note)
        errors.append(probe.stderr.decode(errors="replace").strip() or f"exit code {probe.returncode}")
    logger.warning("sandbox: no namespaces available: %s", errors[-1])
    return Isolation((), False, False, False, f"network isolation unavailable: {errors[-1]}")


def child_main(config_text: str) -> int:
    """The child's first stage (``python -I -c``), inside the namespaces: hide, limit, drop, exec pytest.

    Returns only when the setup fails.
    """
    config = json.loads(config_text)
    try:
        _apply_shadows([_Shadow(d, m, s, tuple(k)) for d, m, s, k in config["shadows"]])
        os.chdir(config["workspace"])
        # Ignored, an over-long write fails with EFBIG and a CPU overrun ends with SIGKILL at the hard
        # limit; neither signal's default action (a core dump) then happens.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        for name, soft, hard in config["rlimits"]:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        if config["uid"] is not None:
            _drop_privileges(config["uid"], config["gid"])
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        if config["pdeathsig"]:
            # Changing credentials cleared the one --kill-child set; without it, a killed unshare
            # would leave the PID namespace running.
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError as exc:
        sys.stderr.write(f"{SETUP_FAILED_MARKER} {exc}\n")
        return SETUP_FAILED_EXIT
    argv = config["argv"]
    os.execv(argv[0], argv)


# ----------------------------------------------------------------------------- the run


async def _run(
    workspace: Path,
    target_arg: str,
    limits: SandboxLimits,
    isolation: Isolation,
    identity: _Identity,
    shadows: list[_Shadow],
) -> TestRun:
    config = {
        "workspace": str(workspace),
        "shadows": [[s.directory, s.mode, s.size, list(s.keep)] for s in shadows],
        "rlimits": _rlimits(limits),
        "uid": identity.uid if identity.drop else None,
        "gid": identity.gid if identity.drop else None,
        "pdeathsig": isolation.pids,
        "argv": [sys.executable, "-m", "pytest", *_pytest_options(workspace), target_arg],
    }
    backstop = shutil.which("timeout")
    command = [
        *([backstop, "-s", "KILL", f"{limits.wall_seconds + BACKSTOP_GRACE_SECONDS:g}"] if backstop else []),
        *isolation.prefix,
        sys.executable,
        "-I",
        "-c",
        _CHILD_BOOT,
        json.dumps(config),
    ]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workspace),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(workspace),
        # Plain pytest: the plugins installed beside Crucible are not the agent's to load.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    started = time.monotonic()
    transport, child = await asyncio.get_running_loop().subprocess_exec(
        lambda: _Child(limits.output_bytes),
        *command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=workspace,
        env=env,
        start_new_session=True,
    )
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
        # After a normal exit this finds what the tests left running (the group is part of the session).
        strays = await asyncio.to_thread(_sweep_session, session)
        # With nothing left to hold the pipe open, it closes at once (and the exit is reaped).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.closed.wait(), 5)
    finally:
        transport.close()
    exit_code = transport.get_returncode()
    duration_ms = int((time.monotonic() - started) * 1000)
    output = child.output.text()
    if exit_code == SETUP_FAILED_EXIT and output.startswith(SETUP_FAILED_MARKER):
        logger.error("sandbox setup failed in %s: %s", workspace, output.strip())
        raise SandboxUnavailable(output.strip())
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


def _rlimits(limits: SandboxLimits) -> list[tuple[str, int, int]]:
    return [
        ("RLIMIT_CPU", limits.cpu_seconds, limits.cpu_seconds),
        ("RLIMIT_AS", limits.address_space_bytes, limits.address_space_bytes),
        ("RLIMIT_FSIZE", limits.file_size_bytes, limits.file_size_bytes),
        ("RLIMIT_NPROC", limits.processes, limits.processes),
        ("RLIMIT_NOFILE", limits.open_files, limits.open_files),
        ("RLIMIT_CORE", 0, 0),
    ]


def _signal_note(number: int, limits: SandboxLimits) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
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


# ----------------------------------------------------------------------------- the child's stage


def _apply_shadows(shadows: list[_Shadow]) -> None:
    if not shadows:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for shadow in shadows:
        # Opened before the tmpfs hides them, bound back through /proc/self/fd after.
        kept = {
            name: os.open(os.path.join(shadow.directory, name), os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
            for name in shadow.keep
        }
        try:
            options = f"mode={shadow.mode:o},size={shadow.size}"
            _mount(libc, "tmpfs", shadow.directory, "tmpfs", _MS_NOSUID | _MS_NODEV, options)
            for name, fd in kept.items():
                target = os.path.join(shadow.directory, name)
                os.mkdir(target, 0o755)
                _mount(libc, f"/proc/self/fd/{fd}", target, None, _MS_BIND | _MS_REC, None)
        finally:
            for fd in kept.values():
                os.close(fd)


def _mount(libc: ctypes.CDLL, source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    result = libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {source} on {target}: {os.strerror(code)}")


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl {option}: {os.strerror(code)}")


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError(0, f"could not become uid {uid} gid {gid}")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError(0, "root could be regained after dropping privileges")
