"""Queue-position models: how much of the resting size at our price is ahead of our order.

An order joins the back of its level: `queue_ahead` starts at the level's size on our side of
the venue's book when the order arrives. What moves it forward:

* **RiskAverse** (the default, hftbacktest's `RiskAverseQueueModel`, Nautilus's queue
  position): only trades at our price shrink the queue ahead; a smaller level (cancels) never
  moves us forward, except that the queue ahead can never exceed the level's size.
* **PowerProb(n)** (hftbacktest's `ProbQueueModel` with f(x) = x**n): a level decrease not
  explained by trades is split between the size ahead of us and the size behind us in the
  proportion f(ahead) : f(behind); the part ahead moves us forward. Computed in exact integers
  (floor), so it is deterministic: no random draws.
* **Touch**: no queue; a trade at our price fills us at once (the zero-latency, fill-on-touch
  configuration of the golden tests).

Trades always move the queue; the amount a trade leaves after passing the queue ahead is what
can fill us (fills.py).
"""

from __future__ import annotations

from quantsaas.backtest.orders import Order
from quantsaas.errors import ConfigError


class QueueModel:
    name = "risk-averse"

    def on_join(self, order: Order, level_size: int) -> None:
        order.queue_ahead = level_size
        order.traded_at_level = 0

    def on_trade(self, order: Order, size: int) -> int:
        """A trade of `size` at our price: advance the queue, return what is left for us."""
        ahead = order.queue_ahead
        if ahead >= size:
            order.queue_ahead = ahead - size
            order.traded_at_level += size
            return 0
        order.queue_ahead = 0
        order.traded_at_level += ahead
        return size - ahead

    def on_level(self, order: Order, before: int, after: int) -> None:
        """Our level's size on our side changed from `before` to `after` (not our own order)."""
        if after < order.queue_ahead:
            order.queue_ahead = after
        if after < before:
            order.traded_at_level = max(0, order.traded_at_level - (before - after))


class RiskAverse(QueueModel):
    pass


class Touch(QueueModel):
    name = "touch"

    def on_join(self, order: Order, level_size: int) -> None:
        order.queue_ahead = 0
        order.traded_at_level = 0

    def on_level(self, order: Order, before: int, after: int) -> None:
        order.queue_ahead = 0


class PowerProb(QueueModel):
    def __init__(self, power: int) -> None:
        if not 1 <= power <= 10:
            raise ConfigError(f"prob queue power must be 1..10, not {power}")
        self.power = power
        self.name = f"prob:{power}"

    def on_level(self, order: Order, before: int, after: int) -> None:
        if after < before:
            decrease = before - after
            explained = min(order.traded_at_level, decrease)
            order.traded_at_level -= explained
            cancels = decrease - explained
            ahead = order.queue_ahead
            behind = max(0, before - explained - ahead)
            if cancels and ahead:
                f_ahead, f_behind = ahead**self.power, behind**self.power
                cut = cancels * f_ahead // (f_ahead + f_behind)
                order.queue_ahead = max(0, ahead - cut)
        if after < order.queue_ahead:
            order.queue_ahead = after


def queue_model(name: str) -> QueueModel:
    """`risk-averse` (default), `prob:N` (power N) or `touch`."""
    text = name.strip().lower()
    if text in ("risk-averse", "riskaverse", "risk_averse"):
        return RiskAverse()
    if text == "touch":
        return Touch()
    if text.startswith("prob"):
        _, _, power = text.partition(":")
        if power and not power.isdigit():
            raise ConfigError(f"bad queue model {name[:40]!r}: prob:N with N a small integer")
        return PowerProb(int(power or "2"))
    raise ConfigError(f"unknown queue model {name[:40]!r}: risk-averse, prob:N or touch")
