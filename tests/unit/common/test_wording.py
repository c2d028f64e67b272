from crucible_common.wording import broke, counted, pairs


def test_a_count_takes_its_noun_in_the_number_it_needs() -> None:
    assert counted(1, "candidate") == "1 candidate"
    assert counted(0, "candidate") == "0 candidates"
    assert counted(3, "candidate") == "3 candidates"
    assert counted(2, "analysis", "analyses") == "2 analyses"


def test_a_run_s_shape_is_its_candidates_times_its_scenarios() -> None:
    assert pairs(1, 2) == "1 candidate × 2 scenarios"
    assert pairs(3, 1) == "3 candidates × 1 scenario"


def test_where_a_candidate_broke_its_hard_constraints_is_said_of_the_scenarios_it_was_evaluated_in() -> None:
    assert broke([("budget", 3), ("safety", 1)], 4) == "broke budget in 3 of 4 scenarios; safety in 1 of 4 scenarios"
    assert broke([("budget", 1)], 1) == "broke budget in 1 of 1 scenario"
