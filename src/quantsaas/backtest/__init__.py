"""Backtesting: strategies over recorded, imported or simulated markets (docs/architecture.md).

from quantsaas.backtest import Strategy, Backtest, BacktestConfig
"""

from quantsaas.backtest.engine import Backtest, BacktestConfig
from quantsaas.backtest.money import Fees
from quantsaas.backtest.orders import Fill, Liquidity, Order, OrderStatus
from quantsaas.backtest.strategy import BookView, Strategy

__all__ = [
    "Backtest",
    "BacktestConfig",
    "BookView",
    "Fees",
    "Fill",
    "Liquidity",
    "Order",
    "OrderStatus",
    "Strategy",
]
