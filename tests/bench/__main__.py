"""Run the benchmarks named on the command line (all when none)."""

from __future__ import annotations

import sys

from tests.bench import (
    gateway_read,
    llm_fanout,
    run_pipeline,
    run_throughput,
    snapshot_suite,
    sprint_hello_world,
    startup,
    ui_load,
)

BENCHMARKS = {
    "startup": startup.run,
    "gateway_read": gateway_read.run,
    "llm_fanout": llm_fanout.run,
    "sprint_hello_world": sprint_hello_world.run,
    "run_pipeline": run_pipeline.run,
    "run_throughput": run_throughput.run,
    "snapshot_suite": snapshot_suite.run,
    "ui_load": ui_load.run,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        for result in BENCHMARKS[name]():
            print(result.json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
