"""The emulator's reading of a problem's words: what names its candidates and scenarios."""

from __future__ import annotations

import pytest

from crucible_emulator.text import noun_phrases, with_article


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        (
            "Reduce waiting time in a hospital emergency department. Patients must never wait more than 4 hours. "
            "Keep the budget under 2 million a year.",
            # The things it is about first; what is to change of them (after "reduce") last; no units.
            ["emergency department", "patients", "budget", "waiting time"],
        ),
        (
            "We need a bridge across the river. Commuters cross the river every day. Steel is a scarce resource.",
            # The most mentioned first; a preposition ends a phrase ("bridge", not "bridge across").
            ["river", "bridge", "steel", "scarce resource"],
        ),
        ("make it fast", []),
    ],
)
def test_noun_phrases_name_what_a_problem_is_about(text: str, phrases: list[str]) -> None:
    assert noun_phrases(text) == phrases


def test_a_phrase_is_named_with_an_article_unless_it_is_plural() -> None:
    assert [with_article(p) for p in ("budget", "emergency department", "patients", "glass")] == [
        "the budget",
        "the emergency department",
        "patients",
        "the glass",
    ]
