"""``crucible-spec``: run the spec service (gRPC, default 127.0.0.1:50051)."""

from __future__ import annotations

from crucible_common import runtime
from crucible_spec.bootstrap import build
from crucible_spec.config import SpecSettings


def main() -> None:
    runtime.main("spec", build, SpecSettings)


if __name__ == "__main__":
    main()
