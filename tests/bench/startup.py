"""startup: `crucible up` (an installed tree, embedded Postgres) until every process is healthy."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from tests.bench.common import Result, stack

BOUND_SECONDS = 10.0
RUNS = 3


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="crucible-bench-startup-") as tmp:
        state = Path(tmp) / "state"
        # The first start also runs initdb; later ones find the data, as a second `make run` does.
        with stack(state) as first:
            cold = first.seconds_to_up
        warm = []
        for _ in range(RUNS):
            with stack(state) as again:
                warm.append(again.seconds_to_up)
    return [
        Result("startup", "seconds_to_healthy", statistics.median(warm), "s", BOUND_SECONDS),
        Result("startup", "seconds_to_healthy_first_run", cold, "s"),
    ]
