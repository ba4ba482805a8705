"""The example strategies in examples/, loaded the way the CLI loads a strategy file."""

from __future__ import annotations

from pathlib import Path

from quantsaas.backtest.runner import load_strategy
from quantsaas.backtest.strategy import Strategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def market_maker_class() -> type[Strategy]:
    return load_strategy(EXAMPLES / "market_maker.py")


def sma_class() -> type[Strategy]:
    return load_strategy(EXAMPLES / "sma_crossover.py")
