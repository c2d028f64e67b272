"""A run as the API returns it: what it replays, for which snapshot test suite, with which seeds."""

from __future__ import annotations

from crucible_run.domain.estimates import ModelPrice, PromptSizes
from crucible_run.domain.model import CandidateDraft, RunMode, RunParameters, RunStatus, TriggerSource
from crucible_run.domain.preflight import Facts, preflight
from crucible_run.entrypoints.proto_mapping import parameters, parameters_pb, preflight_pb, run_pb
from tests.unit.run.runs import a_run


def test_a_run_carries_its_replay_source_and_suite() -> None:
    source = "aaaaaaaa-2222-4333-8444-555555555555"
    run = a_run(RunStatus.CREATED, TriggerSource.SNAPSHOT_TEST, replay_of_run_id=source, snapshot_test_id="suite-1")

    message = run_pb(run)

    assert (message.replay_of_run_id, message.snapshot_test_id) == (source, "suite-1")


def test_an_estimate_past_what_the_wire_holds_is_sent_saturated() -> None:
    """Counts far past the limits are refused, but their preflight still answers with its estimate."""
    parameters = RunParameters(num_candidates=2**31 - 1, num_scenarios=2**31 - 1)
    facts = Facts(
        problem_spec=True,
        world_model=True,
        resolution="medium",
        prompts=PromptSizes(design=3_000, scenarios=3_000, evaluation=2_000),
        known_seeds=frozenset(),
        latest_run_candidates=(),
        designer=ModelPrice(0.15, 0.60),
        evaluator=ModelPrice(0.15, 0.60),
    )

    message = preflight_pb(preflight(RunMode.FULL_SEARCH, parameters, facts))

    assert (message.estimated_cost.calls, message.estimated_cost.tokens) == (2**31 - 1, 2**63 - 1)
    assert not message.ready


def test_seeds_given_whole_cross_the_wire_both_ways() -> None:
    given = RunParameters(
        num_scenarios=2,
        budget_usd=1.5,
        seed_candidates=(CandidateDraft("Arch", "stone", "corbel", ("dry", "calm")), CandidateDraft("Beam")),
    )

    assert parameters(parameters_pb(given)) == given
