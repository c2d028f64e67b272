"""What every benchmark shares: the result line, and a stack started the way a user starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.conftest import free_port, repo_root


@dataclass(frozen=True)
class Result:
    name: str
    metric: str
    value: float
    unit: str
    bound: float | None = None
    # For an upper bound (lower is better) ratio = value / bound; for a lower bound, bound / value:
    # either way a ratio <= 1 meets the target.
    higher_is_better: bool = False

    def json(self) -> str:
        line: dict[str, object] = {
            "name": self.name,
            "metric": self.metric,
            "value": round(self.value, 4),
            "unit": self.unit,
        }
        if self.bound is not None:
            line["bound"] = self.bound
            ratio = self.bound / self.value if self.higher_is_better else self.value / self.bound
            line["ratio"] = round(ratio, 4)
        return json.dumps(line)


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str
    seconds_to_up: float
    env: dict[str, str]


def stack_env(state_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRUCIBLE_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    }
    for name in ("spec", "run", "snapshot", "agent"):
        env[f"CRUCIBLE_{name.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
    env.update(
        CRUCIBLE_GATEWAY_PORT=str(free_port()),
        CRUCIBLE_EMULATOR_PORT=str(free_port()),
        CRUCIBLE_STATE_DIR=str(state_dir),
        CRUCIBLE_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def stack(state_dir: Path | None = None, extra_env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """`crucible up` on free ports with the embedded Postgres; stopped with Ctrl-C at the end."""
    with tempfile.TemporaryDirectory(prefix="crucible-bench-") as tmp:
        state = state_dir or Path(tmp) / "state"
        env = stack_env(state) | (extra_env or {})
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "crucible_cli.main", "up"],
            cwd=repo_root(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            output.append(line)
            if line.startswith("Crucible is up"):
                break
        else:
            raise RuntimeError("the stack did not come up:\n" + "".join(output))
        elapsed = time.monotonic() - started
        url = f"http://127.0.0.1:{env['CRUCIBLE_GATEWAY_PORT']}"
        profilers = _profile(process.pid) if os.environ.get("PROFILE") else []
        try:
            yield RunningStack(process, url, elapsed, env)
        finally:
            for profiler in profilers:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its flame graph on Ctrl-C
            for profiler in profilers:
                profiler.wait(60)
            process.send_signal(signal.SIGINT)
            process.wait(30)


class CpuMeter:
    """CPU seconds (user + system) each process of a stack has spent: ``crucible_gateway``,
    ``crucible_spec``, ... by module, and ``postgres`` (the postmaster and its backends).

    Two readings apart, divided by the work done between them, give a cost per request that other
    load on a shared machine moves less than it moves wall times: what a change saves shows here.
    """

    def __init__(self, running: RunningStack) -> None:
        self._services: dict[str, psutil.Process] = {}
        for child in psutil.Process(running.process.pid).children(recursive=True):
            name = next((part for part in child.cmdline() if part.startswith("crucible_")), "")
            if name:
                self._services.setdefault(name.split(".")[0].removeprefix("crucible_"), child)
        pid_files = list(Path(running.env["CRUCIBLE_STATE_DIR"]).rglob("postmaster.pid"))
        self._postmaster = psutil.Process(int(pid_files[0].read_text().split()[0])) if pid_files else None

    def read(self) -> dict[str, dict[int, float]]:
        """Per process name, the CPU seconds of each of its processes (by pid) so far."""
        reading = {name: {p.pid: _cpu(p)} for name, p in self._services.items()}
        if self._postmaster is not None:
            backends = [self._postmaster, *self._postmaster.children()]
            reading["postgres"] = {p.pid: _cpu(p) for p in backends if p.is_running()}
        return reading

    @staticmethod
    def spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        """CPU seconds each name spent between two readings (a backend that exited meanwhile is not counted)."""
        return {
            name: sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in after.items()
        }


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def _profile(stack_pid: int) -> list[subprocess.Popen[bytes]]:
    """`make bench PROFILE=1`: py-spy samples every Crucible process of the stack for the whole
    benchmark, a flame graph each in .state/profiles/ (time a process spends waiting is left out)."""
    out = repo_root() / ".state" / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    profilers = []
    for child in psutil.Process(stack_pid).children(recursive=True):
        name = next((part for part in child.cmdline() if part.startswith("crucible_")), "")
        if not name:
            continue
        target = out / f"{name.split('.')[0]}-{time.strftime('%Y%m%dT%H%M%S')}.svg"
        command = [str(spy), "record", "--pid", str(child.pid), "--rate", "200", "--nonblocking", "-o", str(target)]
        profilers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        print(f"profiling {name} (pid {child.pid}) into {target}", file=sys.stderr)
    return profilers
