"""snapshot_data versions: the seed's 1.0 documents read as the current version; unknown versions refused."""

from __future__ import annotations

import pytest

from crucible_snapshot.domain import snapshot_data
from crucible_snapshot.domain.snapshot_data import CURRENT_VERSION, Goal, UnreadableSnapshotData
from tests.unit.snapshot.fakes import DATA

SEED_1_0 = {
    "version": "1.0",
    "problem_spec": {
        "constraints": [{"name": "budget", "description": "under budget", "weight": 100}],
        "goals": ["carry traffic", "look good"],
        "resolution": "medium",
        "mode": "full_search",
    },
    "world_model": {"model_data": {"actors": [{"name": "commuters"}]}},
    "run_config": {"mode": "full_search", "config": {"num_candidates": 3, "num_scenarios": 5}},
}


def test_a_seed_1_0_document_is_migrated_on_read() -> None:
    data = snapshot_data.load(SEED_1_0)

    assert data.version == CURRENT_VERSION
    assert data.problem_spec is not None
    assert data.problem_spec.goals == (Goal("carry traffic"), Goal("look good"))
    assert data.problem_spec.constraints[0].weight == 100
    assert data.problem_spec.provenance_log == ()
    assert data.world_model is not None
    assert data.world_model.model_data == {"actors": [{"name": "commuters"}]}
    assert data.world_model.provenance == ()
    assert (data.run_config.mode, data.run_config.parameters.num_candidates) == ("full_search", 3)
    assert data.run_config.parameters.num_scenarios == 5
    assert data.chat_context == ()
    # The stored document is not touched: snapshots are immutable.
    assert SEED_1_0["version"] == "1.0"
    assert SEED_1_0["problem_spec"]["goals"] == ["carry traffic", "look good"]  # type: ignore[index]


def test_a_document_without_a_version_is_the_first_version() -> None:
    unversioned = {k: v for k, v in SEED_1_0.items() if k != "version"}

    assert snapshot_data.load(unversioned).version == CURRENT_VERSION


def test_the_current_version_reads_back_as_written() -> None:
    assert snapshot_data.load(snapshot_data.dump(DATA)) == DATA


def test_an_unknown_version_or_shape_is_refused() -> None:
    with pytest.raises(UnreadableSnapshotData, match=r"version '9\.0'"):
        snapshot_data.load({**SEED_1_0, "version": "9.0"})
    with pytest.raises(UnreadableSnapshotData, match="shape"):
        snapshot_data.load({**snapshot_data.dump(DATA), "run_config": {"mode": 3, "parameters": "many"}})
