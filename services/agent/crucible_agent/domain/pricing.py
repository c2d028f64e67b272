"""USD per call from a price table; a model with no price is unpriced, never $0."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


# List prices in USD per million tokens (standard tier, no caching or batch discounts).
DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    # Anthropic
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-opus-4": Price(15.00, 75.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-haiku": Price(0.25, 1.25),
}


class PriceTable:
    def __init__(self, prices: dict[str, Price]) -> None:
        # Longest names first, so "gpt-4o-mini-2024-07-18" finds gpt-4o-mini before gpt-4o.
        self._prices = dict(sorted(prices.items(), key=lambda item: -len(item[0])))

    @classmethod
    def load(cls, extra_file: Path | None = None) -> PriceTable:
        prices = dict(DEFAULT_PRICES)
        if extra_file is not None:
            raw = json.loads(extra_file.read_text(encoding="utf-8"))
            for model, entry in raw.items():
                prices[model] = Price(float(entry["input_per_mtok"]), float(entry["output_per_mtok"]))
        return cls(prices)

    def price(self, model: str) -> Price | None:
        """The price of ``model``: an exact entry, else the entry its dated snapshot name extends."""
        if model in self._prices:
            return self._prices[model]
        for name, price in self._prices.items():
            if model.startswith(name + "-") and _is_version_suffix(model[len(name) + 1 :]):
                return price
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        price = self.price(model)
        return None if price is None else price.cost(input_tokens, output_tokens)


def _is_version_suffix(suffix: str) -> bool:
    # "20250929", "2024-07-18", "latest": a snapshot of the same model, not another model.
    return suffix == "latest" or suffix.replace("-", "").isdigit()
