"""snapshot_data versions: the seed's 1.0 documents read as the current version; unknown versions refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crucible_snapshot.domain import snapshot_data
from crucible_snapshot.domain.snapshot_data import (
    CURRENT_VERSION,
    Goal,
    RunConfig,
    RunParameters,
    SeedCandidate,
    UnreadableSnapshotData,
)
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


def test_a_2_0_document_named_its_seeds_only_and_reads_with_none_whole() -> None:
    document = snapshot_data.dump(DATA)
    parameters = {"num_candidates": 0, "num_scenarios": 2, "seed_candidate_ids": ["c-1"]}
    old = {**document, "version": "2.0", "run_config": {"mode": "eval_only", "parameters": parameters}}

    data = snapshot_data.load(old)

    assert data.version == "3.0" == CURRENT_VERSION
    assert data.run_config.parameters.seed_candidate_ids == ("c-1",)
    assert data.run_config.parameters.seed_candidates == ()
    assert "seed_candidates" not in parameters


def test_the_current_version_reads_back_as_written() -> None:
    assert snapshot_data.load(snapshot_data.dump(DATA)) == DATA
    seeded = replace(
        DATA,
        run_config=RunConfig(
            "seeded", RunParameters(2, 3, ("c-1",), seed_candidates=(SeedCandidate("Arch", "", "", ("dry",), "c-1"),))
        ),
    )
    assert snapshot_data.load(snapshot_data.dump(seeded)) == seeded


def test_an_unknown_version_or_shape_is_refused() -> None:
    with pytest.raises(UnreadableSnapshotData, match=r"version '9\.0'"):
        snapshot_data.load({**SEED_1_0, "version": "9.0"})
    with pytest.raises(UnreadableSnapshotData, match="shape"):
        snapshot_data.load({**snapshot_data.dump(DATA), "run_config": {"mode": 3, "parameters": "many"}})


@pytest.mark.parametrize(
    ("document", "fields"),
    [
        pytest.param(
            {"run_config": 5},
            ["snapshot_data.problem_spec", "snapshot_data.world_model", "snapshot_data.run_config"],
            id="1.0-run-config-a-number",
        ),
        pytest.param(
            {**SEED_1_0, "problem_spec": {"goals": 5}}, ["snapshot_data.problem_spec.goals"], id="1.0-goals-a-number"
        ),
        pytest.param(
            {**SEED_1_0, "problem_spec": {"goals": ["a", 7]}},
            ["snapshot_data.problem_spec.goals[1]"],
            id="1.0-goal-a-number",
        ),
        pytest.param(
            {"version": "2.0", "run_config": "x", "problem_spec": None, "world_model": None},
            ["snapshot_data.run_config"],
            id="2.0-run-config-a-string",
        ),
    ],
)
def test_a_document_of_the_wrong_shape_is_refused_naming_each_wrong_part(
    document: dict[str, object], fields: list[str]
) -> None:
    """Whatever an import sends: the migration steps leave what they do not know to the validation,
    which names each part, rather than failing on it themselves."""
    with pytest.raises(UnreadableSnapshotData) as refused:
        snapshot_data.load(document)

    assert [p.field for p in refused.value.problems] == fields
    assert all("pydantic" not in p.description and "\n" not in p.description for p in refused.value.problems)
