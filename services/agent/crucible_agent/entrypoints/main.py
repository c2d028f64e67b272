"""``crucible-agent``: run the agent service."""

from __future__ import annotations

from crucible_agent.bootstrap import build
from crucible_common import runtime


def main() -> None:
    runtime.main("agent", build)


if __name__ == "__main__":
    main()
