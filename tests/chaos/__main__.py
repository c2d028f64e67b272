"""`make chaos`: every fault in turn on one stack; a table for people, one JSON line per fault.

Exits 1 when any row lost work or paid twice. ``python -m tests.chaos "sigkill run" ...`` runs
only the faults named.
"""

from __future__ import annotations

import sys

from tests.chaos.harness import FAULTS, Row, chaos_stack, run_fault, table


async def main(names: list[str]) -> int:
    faults = [f for f in FAULTS if not names or f.name in names]
    unknown = set(names) - {f.name for f in FAULTS}
    if unknown:
        print(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {', '.join(f.name for f in FAULTS)}")
        return 2
    rows: list[Row] = []
    async with chaos_stack(log=lambda line: print(line, file=sys.stderr)) as stack:
        for fault in faults:
            print(f"fault: {fault.name} ...", file=sys.stderr, flush=True)
            rows.append(await run_fault(stack, fault))
            print(rows[-1].json(), flush=True)
    print(table(rows), file=sys.stderr)
    return 1 if any(r.lost or r.paid_twice for r in rows) else 0


if __name__ == "__main__":
    import uvloop

    sys.exit(uvloop.run(main(sys.argv[1:])))
