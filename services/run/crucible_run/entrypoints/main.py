"""``crucible-run``: run the run service."""

from __future__ import annotations

from crucible_common import runtime
from crucible_run.bootstrap import build


def main() -> None:
    runtime.main("run", build)


if __name__ == "__main__":
    main()
