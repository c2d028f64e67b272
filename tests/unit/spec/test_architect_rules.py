"""The rules that turn the Architect's proposals into changes and words (crucible_spec.domain.architect)."""

from __future__ import annotations

from datetime import UTC, datetime

from crucible_spec.domain.architect import (
    Blocker,
    Preflight,
    RecommendationSource,
    RecommendationStatus,
    RunWish,
    SpecPatch,
    WorldPatch,
    contract_text,
    merge_spec,
    merge_world,
    recommend,
)
from crucible_spec.domain.model import Constraint, Goal, ProblemSpec, Resolution, RunMode

NOW = datetime(2026, 11, 26, tzinfo=UTC)
STORED = ProblemSpec(
    "p",
    (Constraint("budget", "under 2M", 70), Constraint("noise", "quiet", 50)),
    (Goal("carry traffic"),),
    Resolution.MEDIUM,
    RunMode.FULL_SEARCH,
    3,
    NOW,
    NOW,
)


def test_a_constraint_named_again_is_replaced_in_place_and_new_ones_come_last() -> None:
    merged = merge_spec(
        STORED,
        SpecPatch(constraints=(Constraint("Budget", "under 1M", 100), Constraint("speed", "fast", 60))),
    )

    assert [(c.name, c.weight) for c in merged.constraints] == [("Budget", 100), ("noise", 50), ("speed", 60)]
    assert merged.paths == ("constraints",)


def test_goals_are_added_once_and_removals_and_settings_apply() -> None:
    merged = merge_spec(
        STORED,
        SpecPatch(
            goals=(Goal("Carry traffic "), Goal("stay open in floods")),
            remove_constraints=("noise",),
            resolution=Resolution.FINE,
            mode=RunMode.FULL_SEARCH,
        ),
    )

    assert [g.description for g in merged.goals] == ["carry traffic", "stay open in floods"]
    assert [c.name for c in merged.constraints] == ["budget"]
    # The mode is what is stored already: not a change.
    assert merged.paths == ("constraints", "goals", "resolution")


def test_a_patch_that_repeats_the_stored_spec_changes_nothing() -> None:
    assert merge_spec(STORED, SpecPatch(constraints=STORED.constraints, goals=STORED.goals)).paths == ()


def test_world_items_merge_by_name_section_by_section() -> None:
    stored = {"actors": [{"name": "commuters", "description": "daily"}], "resources": []}
    changed, paths = merge_world(
        stored,
        WorldPatch(
            {
                "actors": ({"name": "Commuters", "description": "twice a day"}, {"name": "trucks", "description": ""}),
                "resources": ({"name": "steel", "description": "scarce"},),
            }
        ),
    )

    assert changed == {
        "actors": [{"name": "Commuters", "description": "twice a day"}, {"name": "trucks", "description": ""}],
        "resources": [{"name": "steel", "description": "scarce"}],
    }
    assert paths == ("model_data.actors", "model_data.resources")
    assert merge_world(changed, WorldPatch({"actors": tuple(changed["actors"])})) == ({}, ())


SOURCE = RecommendationSource("r", "p", "s", "m", NOW)
WISH = RunWish(RunMode.SEEDED, 50, 50, "big", expires_in_seconds=10)


def test_status_parameters_and_cost_come_from_preflight_never_from_the_wish() -> None:
    preflight = Preflight(
        ready=False,
        blockers=(Blocker("validation_error", "num_candidates: at most 1,000 evaluations", "num_candidates"),),
        warnings=("large_candidate_count",),
        mode=RunMode.FULL_SEARCH,
        parameters={"num_candidates": 20, "num_scenarios": 50},
        prerequisites={"problem_spec": True, "world_model": True, "seed_candidates": False},
        notes=("note",),
        estimated_tokens=100,
        estimated_usd=None,
        estimated_calls=1002,
    )

    rec = recommend(SOURCE, WISH, preflight)

    assert rec.status is RecommendationStatus.BLOCKED
    assert rec.mode is RunMode.FULL_SEARCH
    assert rec.parameters == {"num_candidates": 20, "num_scenarios": 50}
    assert rec.estimated_cost == {"tokens": 100, "usd": None}
    # The model's expiry is kept within bounds.
    assert (rec.expires_at - rec.generated_at).total_seconds() == 60
    body = rec.to_json()
    assert body["blockers"] == ["validation_error"]
    assert body["warnings"] == ["large_candidate_count"]
    assert "num_candidates: at most 1,000 evaluations" in contract_text(rec)


def test_the_contract_always_names_the_run_button_and_never_claims_a_start() -> None:
    info = recommend(SOURCE, WISH, None)
    assert info.status is RecommendationStatus.INFO
    for text in (contract_text(info),):
        assert "I cannot start runs myself" in text
        assert "Run button" in text
    assert contract_text(None) == ""
