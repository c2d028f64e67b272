"""``snapshot_data``: full copies of what a replay restores, with a schema version, migrated on read.

Version "3.0" (current)::

    {version, problem_spec: {constraints, goals, resolution, mode, provenance_log},
     world_model: {model_data, provenance}, run_config: {mode, parameters},
     chat_context: [{role, content, created_at}]}

with ``run_config.parameters.seed_candidates``: the seed candidates of an eval_only or seeded run,
whole, so that a replay in a new project (which has no runs to name seeds from) evaluates the same
candidates. Version "2.0", as issue 12 laid it out, named seeds by id only. Version "1.0" is seed
000's first shape: goals as plain strings, the run's parameters under ``run_config.config``, no
WorldModel provenance, and ``chat_context`` optional. A stored document
is never rewritten (snapshots are immutable); ``load`` brings any known version to the current
one, one step at a time, so a new version adds one step and old snapshots keep reading.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from crucible_common import jsonb
from crucible_common.errors import FieldViolation, field_path

CURRENT_VERSION = "3.0"

Document = dict[str, Any]


@dataclass(frozen=True)
class Constraint:
    name: str
    description: str = ""
    weight: int = 0


@dataclass(frozen=True)
class Goal:
    description: str


@dataclass(frozen=True)
class Actor:
    # "user", "architect" or "system".
    kind: str
    id: str = ""


@dataclass(frozen=True)
class ProvenanceEntry:
    id: str
    version: int
    actor: Actor
    action: str
    changed_fields: tuple[str, ...] = ()
    reason: str = ""
    # The new values of the changed fields: free-form JSON, as the spec service stores them.
    changes: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    chat_message_id: str = ""


@dataclass(frozen=True)
class ProblemSpecCopy:
    constraints: tuple[Constraint, ...] = ()
    goals: tuple[Goal, ...] = ()
    # "coarse", "medium", "fine", or "" when the spec left it unset.
    resolution: str = ""
    # "full_search", "eval_only", "seeded", or "".
    mode: str = ""
    provenance_log: tuple[ProvenanceEntry, ...] = ()


@dataclass(frozen=True)
class WorldModelCopy:
    # The WorldModel's sections (actors, mechanisms, ...): free-form JSON, copied whole.
    model_data: dict[str, Any] = field(default_factory=dict)
    provenance: tuple[ProvenanceEntry, ...] = ()


@dataclass(frozen=True)
class SeedCandidate:
    """A seed candidate of the snapshot's run, whole."""

    title: str
    description: str = ""
    approach: str = ""
    assumptions: tuple[str, ...] = ()
    # The earlier run's candidate it copies, when the run named it; empty when it was given whole.
    source_candidate_id: str = ""


@dataclass(frozen=True)
class RunParameters:
    """The run parameters as this document keeps them (the run service's RunParameters, copied).

    Its own definition, not the run context's: a stored snapshot must read the same when the run
    service's model changes; a change here is a new version of the document, with its migration.
    """

    # 0: the run service's default for the ProblemSpec's resolution.
    num_candidates: int = 0
    num_scenarios: int = 0
    # Candidates of the source project's runs (eval_only, seeded), as the run named them.
    seed_candidate_ids: tuple[str, ...] = ()
    # The run's own limits, if it had any.
    budget_tokens: int | None = None
    budget_usd: float | None = None
    max_runtime_s: int | None = None
    # Every seed of the run, whole (3.0): the named ones and those the run was given whole.
    seed_candidates: tuple[SeedCandidate, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    # "full_search", "eval_only" or "seeded".
    mode: str = "full_search"
    parameters: RunParameters = field(default_factory=RunParameters)


@dataclass(frozen=True)
class ChatContextMessage:
    # "user", "agent" or "system".
    role: str
    content: str
    created_at: str = ""


@dataclass(frozen=True)
class SnapshotData:
    # None: the project had no ProblemSpec (or WorldModel) when the snapshot was made.
    problem_spec: ProblemSpecCopy | None
    world_model: WorldModelCopy | None
    run_config: RunConfig
    chat_context: tuple[ChatContextMessage, ...] = ()
    version: str = CURRENT_VERSION


class UnreadableSnapshotData(ValueError):
    """A stored document of an unknown version, or one its version's shape does not describe:
    ``problems`` names each part of it that is wrong (``snapshot_data.problem_spec.goals[0]``)."""

    def __init__(self, message: str, problems: tuple[FieldViolation, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (FieldViolation("snapshot_data", message),)


# A step changes only the parts that have the shape it knows; any other part is left as it is, for
# the current version's validation to name (an import is anybody's document).


def _from_1_0(document: Document) -> Document:
    """1.0 → 2.0: goals become objects, run_config.config becomes parameters, provenance lists appear."""
    problem = document.get("problem_spec")
    if isinstance(problem, dict):
        goals = problem.get("goals", [])
        if isinstance(goals, list):
            problem["goals"] = [{"description": g} if isinstance(g, str) else g for g in goals]
        problem.setdefault("provenance_log", [])
    world = document.get("world_model")
    if isinstance(world, dict):
        world.setdefault("provenance", [])
    config = document.get("run_config") or {}
    if isinstance(config, dict):
        document["run_config"] = {
            "mode": config.get("mode") or "full_search",
            "parameters": config.get("parameters", config.get("config", {})),
        }
    document["chat_context"] = document.get("chat_context") or []
    document["version"] = "2.0"
    return document


def _from_2_0(document: Document) -> Document:
    """2.0 → 3.0: seeds whole. A 2.0 document named its seeds only, so it has none whole."""
    config = document.get("run_config")
    parameters = config.get("parameters") if isinstance(config, dict) else None
    if isinstance(parameters, dict):
        parameters.setdefault("seed_candidates", [])
    document["version"] = "3.0"
    return document


# From each old version, the step to the next one.
_MIGRATIONS: dict[str, Callable[[Document], Document]] = {"1.0": _from_1_0, "2.0": _from_2_0}


def migrate(document: Document) -> Document:
    """The document brought to the current version (a copy: the stored one is never changed)."""
    migrated = copy.deepcopy(document)
    version = str(migrated.get("version", "1.0"))
    while version != CURRENT_VERSION:
        step = _MIGRATIONS.get(version)
        if step is None:
            raise UnreadableSnapshotData(f"snapshot_data version {version!r} is not one this service knows")
        migrated = step(migrated)
        version = str(migrated["version"])
    return migrated


def load(document: Document) -> SnapshotData:
    """A stored ``snapshot_data`` document, of any known version, as the current typed data."""
    try:
        return jsonb.load(SnapshotData, migrate(document))
    except ValidationError as exc:
        problems = tuple(
            FieldViolation(field_path(("snapshot_data", *error["loc"])), error["msg"])
            for error in exc.errors(include_url=False)
        )
        said = "; ".join(f"{p.field}: {p.description}" for p in problems[:3])
        raise UnreadableSnapshotData(f"snapshot_data does not have its version's shape ({said})", problems) from exc


def dump(data: SnapshotData) -> Document:
    document: Document = jsonb.dump(SnapshotData, data)
    return document
