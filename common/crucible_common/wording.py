"""How counts read in the texts people see: "1 candidate", "3 candidates × 5 scenarios"."""

from __future__ import annotations

from collections.abc import Iterable


def counted(count: int, noun: str, plural: str = "") -> str:
    """``count`` and ``noun`` in the number it takes ("1 scenario", "0 scenarios"); ``plural`` when
    it is not ``noun`` + "s"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def pairs(candidates: int, scenarios: int) -> str:
    """A run's shape, every candidate in every scenario: "3 candidates × 5 scenarios"."""
    return f"{counted(candidates, 'candidate')} × {counted(scenarios, 'scenario')}"


def broke(where: Iterable[tuple[str, int]], evaluated: int) -> str:
    """Where a rejected candidate broke each hard constraint (its name, in how many scenarios), of
    the ``evaluated`` scenarios it was evaluated in: "broke budget in 3 of 4 scenarios; …", as the run
    summary in the chat, the CLI and the web UI (``violationsText``) all say it."""
    of = counted(evaluated, "scenario")
    return "broke " + "; ".join(f"{constraint} in {scenarios} of {of}" for constraint, scenarios in where)
