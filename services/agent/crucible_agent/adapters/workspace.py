"""A sprint's workspace: the one directory the agent's file tools may touch, and those tools.

Every path comes from the model, so every path is hostile until proven otherwise. A path is checked
twice: by its text (relative, no ``..``, no NUL, not empty) and by where it resolves (every existing
prefix through ``os.path.realpath``, then ``Path.resolve``), which gives the agent a clear reason.
The file is then reached by walking directory descriptors from the workspace root with
``O_NOFOLLOW`` at every step, so a symlink swapped in after the check (tests run as another user
and can create them) cannot redirect the operation. Only regular files with a single link and
directories are served; devices, FIFOs, sockets and symlinks are refused.

The file methods block (they are small); call them through ``asyncio.to_thread`` from a coroutine,
as :class:`ToolBox` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import stat
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import jsonschema

from crucible_agent.domain.sprints import Artifact, ToolResult

if TYPE_CHECKING:
    from crucible_agent.adapters.sandbox import SandboxLimits

logger = logging.getLogger(__name__)

MiB = 1 << 20
REF_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,100}")
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
# Written by Python and pytest, never by the agent: not artifacts, not counted, not listed.
CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO that slipped past the checks must not hang the caller.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class ToolError(Exception):
    """An error the agent should read as a tool result: a stable UPPER_SNAKE reason and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class WorkspaceError(ToolError):
    """A workspace operation refused: a path outside the jail, a file too large, and the like."""


@dataclass(frozen=True)
class WorkspaceLimits:
    max_read_bytes: int = MiB
    max_write_bytes: int = MiB
    max_files: int = 500
    # Downloads are files the tests may have produced too, which RLIMIT_FSIZE caps at 10 MiB.
    # Below the 8 MiB gRPC message limit, so a download never fails in transit.
    max_download_bytes: int = 7 * MiB


DEFAULT_WORKSPACE_LIMITS = WorkspaceLimits()


def jail(root: Path, path: object, *, operation: str, must_exist: bool = False) -> Path:
    """Where ``path`` leads inside ``root`` (a real, symlink-free directory); refuses any way out.

    The result has no symlinks left in its existing part; it may not exist unless ``must_exist``.
    """
    rel = _checked_relative(root, path, operation)
    root_text = str(root)
    current = root_text
    for part in rel.parts:
        current = os.path.join(current, part)
        if not os.path.lexists(current):
            break
        if not _inside(os.path.realpath(current), root_text):
            link = os.path.relpath(current, root_text)
            raise _refused(
                root,
                operation,
                path,
                "ESCAPES_WORKSPACE",
                f"path {_shown(path)} leaves the workspace through the symlink {link!r}",
            )
    try:
        resolved = (root / rel).resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on Python 3.11
        raise _refused(root, operation, path, "ESCAPES_WORKSPACE", f"path {_shown(path)} does not resolve") from exc
    try:
        os.stat(resolved)
    except OSError as exc:
        # A symlink loop anywhere on the path, from Python 3.13 on: resolve() leaves the links where it
        # gave up instead of raising. Any other error (a path not made yet) is for the operation to meet.
        if exc.errno == errno.ELOOP:
            raise _refused(root, operation, path, "ESCAPES_WORKSPACE", f"path {_shown(path)} does not resolve") from exc
    if not _inside(str(resolved), root_text):
        raise _refused(root, operation, path, "ESCAPES_WORKSPACE", f"path {_shown(path)} leaves the workspace")
    if must_exist and not resolved.exists():
        raise _refused(root, operation, path, "NOT_FOUND", f"no such file or directory: {_shown(path)}")
    return resolved


class Workspace:
    """The directory of one sprint, ``root/ref``, and the file operations the agent may use."""

    def __init__(self, root: Path, ref: str, limits: WorkspaceLimits = DEFAULT_WORKSPACE_LIMITS) -> None:
        if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref):
            raise WorkspaceError("INVALID_REF", f"workspace ref {ref!r} is not 1-100 of [A-Za-z0-9_-]")
        root = Path(root)
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        directory = root / ref
        if directory.is_symlink():
            raise WorkspaceError("ESCAPES_WORKSPACE", f"workspace {ref!r} is a symlink")
        directory.mkdir(mode=0o755, exist_ok=True)
        # mkdir's mode is filtered by the umask; the sandbox user must be able to enter.
        directory.chmod(0o755)
        self._path = Path(os.path.realpath(directory))
        self.ref = ref
        self.limits = limits

    @property
    def path(self) -> Path:
        return self._path

    def resolve(self, path: object, *, operation: str = "resolve") -> Path:
        """The absolute path ``path`` names inside the workspace, after every jail check."""
        return jail(self._path, path, operation=operation)

    def read_file(self, path: str) -> str:
        data = self._read(path, self.limits.max_read_bytes, "read")
        return data.decode("utf-8", errors="replace")

    def open_artifact(self, path: str) -> bytes:
        """The bytes of a file, for a download."""
        return self._read(path, self.limits.max_download_bytes, "download")

    def write_file(self, path: str, content: str) -> str:
        """Create or replace a text file (UTF-8), creating its parent directories inside the jail."""
        operation = "write"
        if not isinstance(content, str):
            raise self._refuse(operation, path, "INVALID_CONTENT", f"content must be a string, not {_kind(content)}")
        if len(content) > self.limits.max_write_bytes:
            raise self._too_large_content(operation, path, len(content))
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self._refuse(operation, path, "INVALID_CONTENT", f"content is not valid text: {exc.reason}") from exc
        if len(data) > self.limits.max_write_bytes:
            raise self._too_large_content(operation, path, len(data))
        target = self.resolve(path, operation=operation)
        parts = self._parts(target)
        if not parts:
            raise self._refuse(operation, path, "NOT_A_REGULAR_FILE", "the workspace root is a directory")
        with self._os_errors(operation, path):
            parent = self._open_dir(parts[:-1], create=True)
            try:
                existing = _lstat_at(parts[-1], parent)
                if existing is None:
                    if self._count_files(self.limits.max_files) >= self.limits.max_files:
                        raise self._refuse(
                            operation,
                            path,
                            "TOO_MANY_FILES",
                            f"the workspace already holds {self.limits.max_files} files, the limit",
                        )
                else:
                    self._check_regular(operation, path, existing)
                # Truncated only once the opened file is known to be ours: a file swapped for a
                # hard link to something else after the check above is refused untouched.
                fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | _FILE_FLAGS, 0o644, dir_fd=parent)
            finally:
                os.close(parent)
            try:
                self._check_regular(operation, path, os.fstat(fd))
                os.ftruncate(fd, 0)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        return f"wrote {'/'.join(parts)} ({len(data)} bytes)"

    def list_dir(self, path: str = ".") -> str:
        """A listing: directories end in ``/``, files show their size."""
        operation = "list"
        target = self.resolve(path, operation=operation)
        with self._os_errors(operation, path):
            fd = self._open_dir(self._parts(target), create=False)
            try:
                lines = list(self._listing(fd))
            finally:
                os.close(fd)
        return "\n".join(lines) if lines else "(empty directory)"

    def artifacts(self) -> list[Artifact]:
        """Every regular file, by relative POSIX path, sorted."""
        found: list[Artifact] = []
        with self._os_errors("artifacts", "."):
            for rel, st in self._walk_files():
                if stat.S_ISREG(st.st_mode):
                    found.append(Artifact(rel, st.st_size))
                if len(found) > self.limits.max_files:
                    raise self._refuse(
                        "artifacts",
                        ".",
                        "TOO_MANY_FILES",
                        f"the workspace holds more than {self.limits.max_files} files",
                    )
        return sorted(found, key=lambda a: a.path)

    # ---------------------------------------------------------------- internals

    def _read(self, path: str, limit: int, operation: str) -> bytes:
        target = self.resolve(path, operation=operation)
        parts = self._parts(target)
        if not parts:
            raise self._refuse(operation, path, "NOT_A_REGULAR_FILE", "the workspace root is a directory")
        with self._os_errors(operation, path):
            parent = self._open_dir(parts[:-1], create=False)
            try:
                existing = _lstat_at(parts[-1], parent)
                if existing is None:
                    raise self._refuse(operation, path, "NOT_FOUND", f"no such file: {_shown(path)}")
                self._check_regular(operation, path, existing)
                fd = os.open(parts[-1], os.O_RDONLY | _FILE_FLAGS, dir_fd=parent)
            finally:
                os.close(parent)
            try:
                st = os.fstat(fd)
                self._check_regular(operation, path, st)
                if st.st_size > limit:
                    raise self._refuse(
                        operation, path, "TOO_LARGE", f"{_shown(path)} is {st.st_size} bytes; the limit is {limit}"
                    )
                data = _read_at_most(fd, limit + 1)
            finally:
                os.close(fd)
        if len(data) > limit:
            raise self._refuse(operation, path, "TOO_LARGE", f"{_shown(path)} is over the limit of {limit} bytes")
        return data

    def _parts(self, target: Path) -> tuple[str, ...]:
        return target.relative_to(self._path).parts

    def _open_dir(self, parts: tuple[str, ...], *, create: bool) -> int:
        """A descriptor of the directory ``parts`` below the root, reached without following symlinks."""
        fd = os.open(self._path, _DIR_FLAGS)
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _listing(self, fd: int) -> Iterator[str]:
        with os.scandir(fd) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        shown = [e for e in entries if e.name not in CACHE_DIRS]
        for entry in shown[: self.limits.max_files]:
            name = entry.name if entry.name.isprintable() else repr(entry.name)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                yield f"{name}/"
            elif stat.S_ISREG(st.st_mode):
                yield f"{name}  {st.st_size} bytes"
            else:
                yield f"{name}  ({_file_type(st.st_mode)})"
        if len(shown) > self.limits.max_files:
            yield f"... {len(shown) - self.limits.max_files} more entries"

    def _walk_files(self) -> Iterator[tuple[str, os.stat_result]]:
        """(relative path, lstat) of every non-directory below the root, cache directories skipped."""
        for dirpath, dirnames, filenames, dirfd in os.fwalk(self._path, follow_symlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in CACHE_DIRS)
            rel_dir = PurePosixPath(os.path.relpath(dirpath, self._path))
            for name in sorted(filenames):
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                yield (rel_dir / name).as_posix(), st

    def _count_files(self, limit: int) -> int:
        count = 0
        for _ in self._walk_files():
            count += 1
            if count >= limit:
                break
        return count

    def _check_regular(self, operation: str, path: object, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            raise self._refuse(
                operation, path, "NOT_A_REGULAR_FILE", f"{_shown(path)} is a directory; use fs_list_dir to see it"
            )
        if not stat.S_ISREG(st.st_mode):
            raise self._refuse(
                operation, path, "NOT_A_REGULAR_FILE", f"{_shown(path)} is a {_file_type(st.st_mode)}, not a file"
            )
        if st.st_nlink > 1:
            raise self._refuse(operation, path, "NOT_A_REGULAR_FILE", f"{_shown(path)} has several hard links")

    def _too_large_content(self, operation: str, path: object, size: int) -> WorkspaceError:
        return self._refuse(
            operation, path, "TOO_LARGE", f"content is {size} bytes or more; the limit is {self.limits.max_write_bytes}"
        )

    def _refuse(self, operation: str, path: object, reason: str, message: str) -> WorkspaceError:
        return _refused(self._path, operation, path, reason, message)

    @contextlib.contextmanager
    def _os_errors(self, operation: str, path: object) -> Iterator[None]:
        """Turns an OSError of a checked operation into the refusal it amounts to."""
        try:
            yield
        except OSError as exc:
            shown = _shown(path)
            reason, message = {
                errno.ENOENT: ("NOT_FOUND", f"no such file or directory: {shown}"),
                errno.ENOTDIR: ("NOT_A_DIRECTORY", f"a part of {shown} is not a directory"),
                errno.ELOOP: ("ESCAPES_WORKSPACE", f"path {shown} goes through a symlink"),
                errno.ENAMETOOLONG: ("INVALID_PATH", f"path {shown} is too long"),
                errno.EISDIR: ("NOT_A_REGULAR_FILE", f"{shown} is a directory"),
            }.get(exc.errno or 0, ("IO_ERROR", f"{shown}: {exc.strerror or exc}"))
            raise self._refuse(operation, path, reason, message) from exc


def _checked_relative(root: Path, path: object, operation: str) -> PurePosixPath:
    def refuse(reason: str, message: str) -> WorkspaceError:
        return _refused(root, operation, path, reason, message)

    if not isinstance(path, str):
        raise refuse("INVALID_PATH", f"path must be a string, not {_kind(path)}")
    if not path:
        raise refuse("INVALID_PATH", "path is empty")
    if "\x00" in path:
        raise refuse("INVALID_PATH", "path contains a NUL byte")
    if len(path) > MAX_PATH_CHARS:
        raise refuse("INVALID_PATH", f"path is longer than {MAX_PATH_CHARS} characters")
    if _CONTROL_CHARS.search(path):
        raise refuse("INVALID_PATH", f"path {_shown(path)} contains control characters")
    if path.startswith("/"):
        raise refuse("ABSOLUTE_PATH", f"path {_shown(path)} is absolute; give a path relative to the workspace")
    if ".." in path.split("/"):
        raise refuse("PARENT_TRAVERSAL", f"path {_shown(path)} leaves the workspace")
    rel = PurePosixPath(path)
    if any(len(part.encode("utf-8", errors="surrogateescape")) > MAX_NAME_BYTES for part in rel.parts):
        raise refuse("INVALID_PATH", f"a name in {_shown(path)} is longer than {MAX_NAME_BYTES} bytes")
    return rel


def _refused(root: Path, operation: str, path: object, reason: str, message: str) -> WorkspaceError:
    error = WorkspaceError(reason, message)
    logger.warning("workspace %s refused %s %r: %s", root.name, operation, _truncated(path), error)
    return error


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _lstat_at(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = os.read(fd, min(remaining, MiB))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _truncated(value: object) -> object:
    return value[:200] if isinstance(value, str) else value


def _shown(path: object) -> str:
    return repr(_truncated(path))


# ------------------------------------------------------------------------------ the agent's tools

FS_READ_FILE = "fs_read_file"
FS_WRITE_FILE = "fs_write_file"
FS_LIST_DIR = "fs_list_dir"
RUN_TESTS = "run_tests"

_PATH = {"type": "string", "description": "a path relative to the workspace root, e.g. 'hello.py' or 'src/app.py'"}


class ToolDefinition(NamedTuple):
    """A tool as the model sees it: its name, what it does, a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


TOOLS = (
    ToolDefinition(
        FS_READ_FILE,
        "Read a text file of the workspace.",
        {"type": "object", "properties": {"path": _PATH}, "required": ["path"], "additionalProperties": False},
    ),
    ToolDefinition(
        FS_WRITE_FILE,
        "Create or overwrite a text file of the workspace; missing directories are created.",
        {
            "type": "object",
            "properties": {"path": _PATH, "content": {"type": "string", "description": "the whole file's text"}},
            "required": ["path", "content"],
            "additionalProperties": False,
        },
    ),
    ToolDefinition(
        FS_LIST_DIR,
        "List a directory of the workspace: directories end in '/', files show their size.",
        {
            "type": "object",
            "properties": {"path": {**_PATH, "description": "a directory relative to the workspace root; default '.'"}},
            "additionalProperties": False,
        },
    ),
    ToolDefinition(
        RUN_TESTS,
        "Run pytest in the workspace (no network, time and memory limits) and report the outcome.",
        {
            "type": "object",
            "properties": {
                "path": {
                    "type": ["string", "null"],
                    "description": "a test file, directory or node id relative to the workspace; omit to run all tests",
                }
            },
            "additionalProperties": False,
        },
    ),
)


class PytestReport(Protocol):
    def as_tool_result(self) -> str: ...


class PytestRunner(Protocol):
    def __call__(
        self, workspace_dir: Path, target: str | None, *, limits: SandboxLimits
    ) -> Awaitable[PytestReport]: ...


class ToolBox:
    """The agent's tools over one workspace, by the names the model sees.

    The ``fs_*`` and ``run_tests`` methods raise :class:`ToolError` on a refusal; ``call``, which takes
    the model's raw arguments, checks them against the tool's schema and never raises for bad input:
    every refusal becomes an error result the model can read.
    """

    def __init__(
        self, workspace: Workspace, *, limits: SandboxLimits | None = None, runner: PytestRunner | None = None
    ) -> None:
        # The sandbox jails its target with this module, so it is imported here, not at the top.
        from crucible_agent.adapters import sandbox

        self._workspace = workspace
        self._limits = limits if limits is not None else sandbox.DEFAULT_LIMITS
        self._runner: PytestRunner = runner if runner is not None else sandbox.run_tests
        self._validators = {t.name: jsonschema.Draft202012Validator(t.parameters) for t in TOOLS}
        self._tools: Mapping[str, Callable[..., Awaitable[str]]] = {
            FS_READ_FILE: self.fs_read_file,
            FS_WRITE_FILE: self.fs_write_file,
            FS_LIST_DIR: self.fs_list_dir,
            RUN_TESTS: self.run_tests,
        }

    def tool_specs(self) -> list[ToolDefinition]:
        return list(TOOLS)

    async def fs_read_file(self, path: str) -> str:
        return await asyncio.to_thread(self._workspace.read_file, path)

    async def fs_write_file(self, path: str, content: str) -> str:
        return await asyncio.to_thread(self._workspace.write_file, path, content)

    async def fs_list_dir(self, path: str = ".") -> str:
        return await asyncio.to_thread(self._workspace.list_dir, path)

    async def run_tests(self, path: str | None = None) -> str:
        report = await self._runner(self._workspace.path, path, limits=self._limits)
        return report.as_tool_result()

    async def call(self, name: str, arguments: object) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools)
            return self._error("UNKNOWN_TOOL", f"there is no tool {name!r}; the tools are {known}")
        if not isinstance(arguments, dict):
            return self._error("INVALID_ARGUMENTS", f"{name}: arguments must be an object, not {_kind(arguments)}")
        problem = jsonschema.exceptions.best_match(self._validators[name].iter_errors(arguments))
        if problem is not None:
            return self._error("INVALID_ARGUMENTS", f"{name}: {problem.message}")
        try:
            # The schema admits exactly the method's parameters.
            return ToolResult(await tool(**arguments))
        except ToolError as exc:
            return self._error(exc.reason, exc.message)

    def _error(self, reason: str, message: str) -> ToolResult:
        if reason in ("UNKNOWN_TOOL", "INVALID_ARGUMENTS"):
            logger.warning("workspace %s refused a tool call: %s: %s", self._workspace.ref, reason, message)
        return ToolResult(f"error: {reason}: {message}", is_error=True)
