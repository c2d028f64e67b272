"""Reading spans back, by trace id, from the JSON-lines files ``telemetry`` writes.

The files only grow (every process appends to its own, run after run), so a search never reads
them line by line in Python: it streams each file in large blocks and looks for the wanted trace
ids with ``bytes.find`` (C speed), and decodes only the lines that name one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

BLOCK_BYTES = 4 * 1024 * 1024


def read_spans(directory: Path, trace_ids: Collection[str]) -> list[dict[str, Any]]:
    """The span records (``telemetry.span_record``) of the traces ``trace_ids`` in every file of ``directory``."""
    wanted = {t for t in trace_ids if t}
    if not wanted or not directory.is_dir():
        return []
    # orjson writes compact JSON: a record's own id reads exactly so. A link names its trace the
    # same way, so a matching line is still checked once decoded.
    needles = [orjson.dumps({"trace_id": t})[1:-1] for t in sorted(wanted)]
    found = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in _lines_naming(path, needles):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                # The last line of a file another process is writing at this moment, or one cut
                # short by a crash: not a span (yet).
                continue
            if isinstance(record, dict) and record.get("trace_id") in wanted:
                found.append(record)
    return found


def _lines_naming(path: Path, needles: Sequence[bytes]) -> Iterator[bytes]:
    """The lines of ``path`` that contain one of ``needles``, in file order."""
    with path.open("rb") as file:
        rest = b""
        while block := file.read(BLOCK_BYTES):
            data = rest + block
            whole = data.rfind(b"\n") + 1
            yield from _matching(data[:whole], needles)
            rest = data[whole:]
        if rest:
            yield from _matching(rest, needles)


def _matching(data: bytes, needles: Sequence[bytes]) -> Iterator[bytes]:
    lines: set[tuple[int, int]] = set()
    for needle in needles:
        at = data.find(needle)
        while at != -1:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end == -1 else end
            lines.add((start, end))
            at = data.find(needle, end)
    for start, end in sorted(lines):
        yield data[start:end]
