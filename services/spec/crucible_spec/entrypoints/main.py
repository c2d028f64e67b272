"""``crucible-spec``: run the spec service (gRPC, default 127.0.0.1:50051)."""

from __future__ import annotations

from crucible_common import runtime
from crucible_spec.bootstrap import build


def main() -> None:
    runtime.main("spec", build)


if __name__ == "__main__":
    main()
