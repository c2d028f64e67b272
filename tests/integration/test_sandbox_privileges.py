"""What the sandbox user can do on the host, not only what it is called inside.

A user namespace can call root "nobody": ``getuid()`` is then not 0, yet the tests still open root's
files and escape ``RLIMIT_NPROC``. These checks fail for such a renamed root.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_agent.adapters.sandbox import run_tests
from crucible_agent.adapters.workspace import Workspace

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop happens only when the service is root"),
]

ROOT_ONLY = Path("/etc/shadow")


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="crucible-sandbox-privileges-"))
    root.chmod(0o755)
    yield Workspace(root, "sprint-1")
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(
    not ROOT_ONLY.is_file() or ROOT_ONLY.stat().st_uid != 0 or bool(ROOT_ONLY.stat().st_mode & 0o004),
    reason=f"no root-only {ROOT_ONLY} here",
)
async def test_the_tests_cannot_open_roots_files(workspace: Workspace) -> None:
    workspace.write_file(
        "test_shadow.py",
        f"import pytest\n\ndef test_no_shadow():\n    with pytest.raises(PermissionError):\n"
        f"        open({str(ROOT_ONLY)!r}).read()\n",
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output


async def test_the_tests_have_no_capabilities_and_cannot_gain_any(workspace: Workspace) -> None:
    workspace.write_file(
        "test_caps.py",
        "def test_caps():\n"
        "    status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())\n"
        "    assert status['NoNewPrivs'].strip() == '1'\n"
        "    assert int(status['CapEff'], 16) == int(status['CapPrm'], 16) == int(status['CapAmb'], 16) == 0\n",
    )

    run = await run_tests(workspace.path)

    assert run.passed, run.output
