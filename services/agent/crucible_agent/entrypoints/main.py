"""``crucible-agent``: run the agent service (gRPC, default 127.0.0.1:50054)."""

from __future__ import annotations

import os

# The sandbox starts each test run with fork + exec (uvloop's subprocess_exec is libuv's fork()), and
# fork() runs gRPC's pthread_atfork handlers. With fork support on (grpcio's default), the child's
# handler restarts gRPC's EventEngine threads in the child, and while a call is in flight (a watched
# sprint's WatchSprint stream) they work on state the fork copied mid-operation and crash it with
# SIGSEGV before it reaches exec: the test run "fails" with exit code -11. This process never uses
# gRPC in a child, so fork support is off. gRPC reads the setting once, on import: set it before.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"

from crucible_agent.bootstrap import build
from crucible_agent.config import AgentSettings
from crucible_common import runtime


def main() -> None:
    runtime.main("agent", build, AgentSettings)


if __name__ == "__main__":
    main()
