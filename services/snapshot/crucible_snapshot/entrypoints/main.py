"""``crucible-snapshot``: run the snapshot service."""

from __future__ import annotations

from crucible_common import runtime
from crucible_snapshot.bootstrap import build


def main() -> None:
    runtime.main("snapshot", build)


if __name__ == "__main__":
    main()
