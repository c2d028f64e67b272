"""How counts read in the texts people see: "1 candidate", "3 candidates × 5 scenarios"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str = "") -> str:
    """``count`` and ``noun`` in the number it takes ("1 scenario", "0 scenarios"); ``plural`` when
    it is not ``noun`` + "s"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def pairs(candidates: int, scenarios: int) -> str:
    """A run's shape, every candidate in every scenario: "3 candidates × 5 scenarios"."""
    return f"{counted(candidates, 'candidate')} × {counted(scenarios, 'scenario')}"
