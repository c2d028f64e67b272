"""The ``crucible`` executable.

``crucible healthcheck`` runs in every container every few seconds (compose's health checks);
importing the whole CLI (the MCP SDK, rich, the API clients) takes about 1.5 s of CPU, the health
check alone a fraction of it. So that one command is routed before the rest is imported; every
other command, and ``crucible --help`` (which lists healthcheck too), goes to ``crucible_cli.main``.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["healthcheck"]:
        from crucible_cli.healthcheck import run

        run(sys.argv[2:])
        return
    from crucible_cli.main import app

    app()
