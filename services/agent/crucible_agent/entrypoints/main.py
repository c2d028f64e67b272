"""``crucible-agent``: run the agent service (gRPC, default 127.0.0.1:50054)."""

from __future__ import annotations

from crucible_agent.bootstrap import build
from crucible_agent.config import AgentSettings
from crucible_common import runtime


def main() -> None:
    runtime.main("agent", build, AgentSettings)


if __name__ == "__main__":
    main()
