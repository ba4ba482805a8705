"""A simulated option chain on the simulator's BTC/USD and ETH/USD, Deribit-style.

Inverse (coin-settled) European options like Deribit's: named `BTC-27DEC26-60000-C`, priced in
the coin with a 0.0001 tick, expiring at 08:00 UTC. Expiries: the next daily (at least 2 h
away), the next Friday, the monthly (last Friday of the month, after that Friday) and the
quarterly (last Friday of March, June, September or December, after the monthly).
Strikes: a fixed grid around the underlying's start price. Each ticker is derived from the
underlying's current mid F (taken as the future price, rate 0) and a smile

    iv = atm(T) * (1 + skew * m + curvature * m^2), m = ln(K/F) / (atm(T) sqrt(T)), |m| <= 2.5,
    atm(T) = base vol * (0.85 + 0.3 * exp(-T / 0.05)),

with the base vol the simulator's volatility of the underlying (puts richer: skew < 0).
Mark price = Black-Scholes(mark iv) / F rounded to the tick; bid/ask IVs 2 vol points either
side; greeks as Deribit computes them (`option_greeks`), rounded to 5 decimals as Deribit does.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from quantsaas.analytics.greeks import bs_price, option_greeks
from quantsaas.model import Instrument, OptionSpec, OptionTicker
from quantsaas.option_names import expiry_code as deribit_expiry_code
from quantsaas.option_names import expiry_ns as deribit_expiry_ns

OPTION_PRICE_SCALE = 4
SKEW = -0.08
CURVATURE = 0.06
SPREAD_VOL_POINTS = 2.0
NS_PER_YEAR = 365 * 86_400_000_000_000
MINUTE_NS = 60_000_000_000
MAX_MONEYNESS = 2.5


@dataclass(frozen=True, slots=True)
class ChainSpec:
    underlying: str
    strikes: tuple[int, ...]
    """Whole units of the quote currency."""


CHAINS: dict[str, ChainSpec] = {
    "BTC/USD": ChainSpec("BTC/USD", tuple(range(48_000, 72_001, 3_000))),
    "ETH/USD": ChainSpec("ETH/USD", tuple(range(2_400, 3_601, 150))),
}


def expiries(now_ns: int) -> list[int]:
    """Daily, weekly, monthly and quarterly 08:00 UTC expiries after `now_ns`."""
    today = dt.datetime.fromtimestamp(now_ns // 1_000_000_000, tz=dt.UTC).date()
    daily = next(
        d
        for d in (today + dt.timedelta(days=i) for i in range(3))
        if deribit_expiry_ns(d) - now_ns >= 2 * 3600 * 1_000_000_000
    )
    friday = daily + dt.timedelta(days=(4 - daily.weekday()) % 7 or 7)
    monthly = _last_friday(today.year, today.month, friday, step=1)
    quarter_month = 3 * ((today.month - 1) // 3) + 3
    quarterly = _last_friday(today.year, quarter_month, monthly, step=3)
    return sorted({deribit_expiry_ns(d) for d in (daily, friday, monthly, quarterly)})


def _last_friday(year: int, month: int, after: dt.date, step: int) -> dt.date:
    """The last Friday of the month, or of the month `step` later if it is not after `after`."""
    while True:
        first_next = dt.date(year + month // 12, month % 12 + 1, 1)
        last = first_next - dt.timedelta(days=1)
        day = last - dt.timedelta(days=(last.weekday() - 4) % 7)
        if day > after:
            return day
        year, month = year + (month + step - 1) // 12, (month + step - 1) % 12 + 1


def option_instrument(underlying: Instrument, expiry_ns: int, strike: int, kind: str) -> Instrument:
    letter = "C" if kind == "call" else "P"
    name = f"{underlying.base}-{deribit_expiry_code(expiry_ns)}-{strike}-{letter}"
    return Instrument(
        venue=underlying.venue,
        base=underlying.base,
        quote=underlying.base,
        native_symbol=name,
        price_scale=OPTION_PRICE_SCALE,
        size_scale=1,
        tick_size=1,
        lot_size=1,
        option=OptionSpec(underlying.symbol, expiry_ns, strike, 0, kind),
    )


def smile_iv(base_vol: float, forward: float, strike: float, years: float) -> float:
    """The simulated smile (fraction)."""
    atm = base_vol * (0.85 + 0.3 * math.exp(-years / 0.05))
    m = math.log(strike / forward) / (atm * math.sqrt(years))
    m = max(-MAX_MONEYNESS, min(MAX_MONEYNESS, m))
    return atm * (1.0 + SKEW * m + CURVATURE * m * m)


class OptionChainSim:
    """The options on one simulated underlying; `tickers(mid, now)` gives one ticker each."""

    def __init__(self, underlying: Instrument, base_vol: float, now_ns: int) -> None:
        spec = CHAINS[underlying.symbol]
        self.underlying = underlying
        self.base_vol = base_vol
        self.instruments = tuple(
            option_instrument(underlying, expiry, strike, kind)
            for expiry in expiries(now_ns)
            for strike in spec.strikes
            for kind in ("call", "put")
        )

    def tickers(self, mid_raw: float, now_ns: int) -> list[OptionTicker]:
        """One ticker per option not within a minute of expiry, priced off `mid_raw`."""
        forward = mid_raw / 10**self.underlying.price_scale
        live = [
            (instrument, instrument.option)
            for instrument in self.instruments
            if instrument.option is not None and instrument.option.expiry_ns - now_ns >= MINUTE_NS
        ]
        if not live or not forward > 0:
            return []
        kinds = [option.kind for _, option in live]
        strikes = np.array([float(option.strike) for _, option in live])
        expiry = np.array([option.expiry_ns for _, option in live], dtype=np.int64)
        years = (expiry - now_ns) / NS_PER_YEAR
        iv = np.array(
            [smile_iv(self.base_vol, forward, k, t) for k, t in zip(strikes, years, strict=True)]
        )
        bid_iv, ask_iv = iv - SPREAD_VOL_POINTS / 100, iv + SPREAD_VOL_POINTS / 100
        unit = 10**OPTION_PRICE_SCALE / forward
        mark = bs_price(kinds, forward, strikes, years, iv) * unit
        bid = bs_price(kinds, forward, strikes, years, np.maximum(bid_iv, 1e-4)) * unit
        ask = bs_price(kinds, forward, strikes, years, ask_iv) * unit
        g = option_greeks(kinds, forward, strikes, expiry, now_ns, iv)
        greeks = [np.round(np.asarray(v), 5) for v in (g.delta, g.gamma, g.vega, g.theta, g.rho)]
        base = self.underlying.base
        out = []
        for i, (instrument, option) in enumerate(live):
            best_bid = math.floor(bid[i]) if bid_iv[i] > 0 and math.floor(bid[i]) > 0 else None
            moneyness = abs(math.log(strikes[i] / forward))
            delta, gamma, vega, theta, rho = (float(v[i]) for v in greeks)
            out.append(
                OptionTicker(
                    instrument=instrument,
                    mark_price=max(1, round(mark[i])),
                    mark_iv=round(float(iv[i]) * 100, 2),
                    bid_iv=None if best_bid is None else round(float(bid_iv[i]) * 100, 2),
                    ask_iv=round(float(ask_iv[i]) * 100, 2),
                    best_bid_price=best_bid,
                    best_ask_price=max(1, math.ceil(ask[i])),
                    underlying_price=forward,
                    underlying_index=f"SYN.{base}-{deribit_expiry_code(option.expiry_ns)}",
                    index_price=forward,
                    interest_rate=0.0,
                    open_interest=max(1, round(20_000 * math.exp(-8 * moneyness))),
                    delta=delta,
                    gamma=gamma,
                    vega=vega,
                    theta=theta,
                    rho=rho,
                    ts_event=now_ns,
                    ts_recv=now_ns,
                )
            )
        return out


def option_chains(
    underlyings: tuple[Instrument, ...], vol_for: dict[str, float], now_ns: int
) -> list[OptionChainSim]:
    """A chain for every simulated underlying that has one (BTC/USD, ETH/USD)."""
    return [OptionChainSim(u, vol_for[u.symbol], now_ns) for u in underlyings if u.symbol in CHAINS]
