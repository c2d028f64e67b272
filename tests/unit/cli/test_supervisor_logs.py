"""What `crucible up` shows of a process that exited: its own lines, not an earlier start's."""

from __future__ import annotations

from pathlib import Path

from crucible_cli.supervisor import Child


async def _healthy() -> bool:
    return True


def test_the_tail_of_a_process_s_log_begins_where_its_start_does(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(
        "\n===== start 2026-11-29T09:00:00 =====\n"
        "Traceback (most recent call last):\nOSError: [Errno 98] address in use\n"
    )
    child = Child("run", ["crucible-run"], log, _healthy)
    with log.open("ab") as child.log_file:
        child.begin_log("start")
        # A process that wrote nothing yet has nothing to show.
        assert child.log_tail() == ""
        child.log_file.write(b"run service stopped\n")
        child.log_file.flush()

        assert child.log_tail() == "run service stopped"
