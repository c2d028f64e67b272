"""The name a snapshot of a run takes when its maker gives none."""

from __future__ import annotations

from collections.abc import Collection

# As the snapshots table and the API bound a name.
MAX_NAME = 200


def run_snapshot_name(project_title: str, run_id: str, run_status: str, taken: Collection[str]) -> str:
    """``<title> · run 1a2b3c4d · completed``, then `` (2)``, `` (3)``… after it: the first not in
    ``taken`` (names compared case-insensitively, as a list of them reads). What a list of snapshots
    needs to tell them apart: the project, which run, how it ended. A title that would take the
    name's whole length is shortened; the run and the number are never left out."""
    folded = {name.casefold() for name in taken}
    which = f" · run {run_id[:8]} · {run_status.lower()}"
    number = 1
    while True:
        ending = which + (f" ({number})" if number > 1 else "")
        title = project_title
        if len(title) + len(ending) > MAX_NAME:
            title = title[: MAX_NAME - len(ending) - 1] + "…"
        name = title + ending
        if name.casefold() not in folded:
            return name
        number += 1


def run_marker(run_id: str) -> str:
    """What every default name of a run's snapshots holds: what finds the names taken."""
    return f" · run {run_id[:8]} · "
