from __future__ import annotations

import json
from pathlib import Path

import pytest

from crucible_agent.domain.pricing import DEFAULT_PRICES, PriceTable


def test_priced_models_cost_their_list_price() -> None:
    table = PriceTable(DEFAULT_PRICES)
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    assert table.cost("claude-sonnet-4-5", 2_000, 1_000) == pytest.approx((2_000 * 3 + 1_000 * 15) / 1e6)


def test_dated_snapshots_find_their_model_and_not_a_shorter_one() -> None:
    table = PriceTable(DEFAULT_PRICES)
    assert table.price("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.price("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert table.price("claude-3-5-haiku-latest") == DEFAULT_PRICES["claude-3-5-haiku"]
    assert table.price("claude-sonnet-4-5-20250929") == DEFAULT_PRICES["claude-sonnet-4-5"]


def test_an_unknown_model_is_unpriced_not_free() -> None:
    table = PriceTable(DEFAULT_PRICES)
    assert table.cost("my-local-llama", 100, 100) is None
    # A different model that merely starts with a known name is not that model.
    assert table.price("gpt-4o-mini-finetuned-acme") is None


def test_a_prices_file_extends_and_overrides(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {
                "my-local-llama": {"input_per_mtok": 0, "output_per_mtok": 0},
                "gpt-4o": {"input_per_mtok": 1, "output_per_mtok": 2},
            }
        )
    )
    table = PriceTable.load(prices)
    assert table.cost("my-local-llama", 100, 100) == 0.0
    assert table.cost("gpt-4o", 1_000_000, 0) == 1.0
