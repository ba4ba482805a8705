"""Venue commands of the CLI: `fake-exchange` (run a local fake venue) and `replay-raw`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import orjson

from quantsaas.errors import ConfigError
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.fakes.coinbase import CoinbaseFakeConfig, FakeCoinbase
from quantsaas.fakes.deribit import DERIBIT_FAULTS, DeribitFakeConfig, FakeDeribit
from quantsaas.fakes.kraken import KRAKEN_FAULTS, FakeKraken, KrakenFakeConfig
from quantsaas.fakes.server import FAULTS, FakeServer
from quantsaas.replay_raw import VENUES, replay_raw


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_commands(commands: Any) -> None:
    fake = commands.add_parser("fake-exchange", help="run a local fake venue (real wire protocol)")
    fake.add_argument("venue", choices=["binance", "coinbase", "kraken", "deribit"])
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=9001, help="0 picks a free port")
    fake.add_argument(
        "--api",
        choices=["exchange", "advanced"],
        default="exchange",
        help="coinbase only: which feed to speak",
    )
    fake.add_argument(
        "--symbols",
        type=_csv,
        help="native symbols (BTCUSDT, BTC-USD, BTC/USD); deribit: currencies (BTC,ETH)",
    )
    fake.add_argument("--rate", type=float, default=50.0, help="simulated events/s per symbol")
    fake.add_argument("--seed", type=int, default=11, help="market seed (serve's sim uses 7)")
    fake.add_argument(
        "--fault",
        action="append",
        choices=KRAKEN_FAULTS,
        default=[],
        help="inject this fault after --fault-after seconds (repeatable); checksum and "
        "maintenance: kraken only",
    )
    fake.add_argument("--fault-after", type=float, default=5.0)
    fake.add_argument(
        "--fault-every", type=float, default=0.0, help="repeat the faults every N seconds (0: once)"
    )
    fake.add_argument("--replay", type=Path, help="send this file's lines verbatim instead")
    fake.add_argument("--snapshot", type=Path, help="binance: REST depth body to serve (replay)")
    fake.add_argument(
        "--maintenance", type=float, default=5.0, help="kraken: seconds a maintenance lasts"
    )
    fake.add_argument("--lifetime", type=float, default=86_400.0, help="connection lifetime, s")
    fake.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    raw = commands.add_parser("replay-raw", help="run recorded raw frames through parser + book")
    raw.add_argument("--venue", required=True, choices=VENUES)
    raw.add_argument("--snapshot", type=Path, help="REST depth response (binance)")
    raw.add_argument("frames", type=Path, help="one raw venue message per line")


def run_replay_raw(args: argparse.Namespace) -> int:
    result = replay_raw(args.venue, args.frames, args.snapshot)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


Fake = FakeBinance | FakeCoinbase | FakeKraken | FakeDeribit


def build_fake(args: argparse.Namespace) -> Fake:
    if args.venue == "kraken":
        return FakeKraken(
            KrakenFakeConfig(
                symbols=args.symbols or ("BTC/USD", "ETH/USD"),
                rate=args.rate,
                seed=args.seed,
                maintenance_s=args.maintenance,
                replay=args.replay,
            )
        )
    if args.venue == "deribit":
        return FakeDeribit(
            DeribitFakeConfig(
                currencies=args.symbols or ("BTC", "ETH"), rate=args.rate, seed=args.seed
            )
        )
    if args.venue == "binance":
        return FakeBinance(
            BinanceFakeConfig(
                symbols=args.symbols or ("BTCUSDT", "ETHUSDT"),
                rate=args.rate,
                seed=args.seed,
                lifetime_s=args.lifetime,
                replay=args.replay,
                snapshot=args.snapshot,
            )
        )
    return FakeCoinbase(
        CoinbaseFakeConfig(
            api=args.api,
            symbols=args.symbols or ("BTC-USD", "ETH-USD"),
            rate=args.rate,
            seed=args.seed,
            replay=args.replay,
        )
    )


async def _faults(fake: Fake, faults: list[str], after: float, every: float) -> None:
    await asyncio.sleep(after)
    while True:
        for fault in faults:
            fake.inject(fault)
        if every <= 0:
            return
        await asyncio.sleep(every)


async def _run_fake(args: argparse.Namespace) -> None:
    fake = build_fake(args)
    port = await fake.start(args.host, args.port)
    scheme = "ws"
    print(f"fake {args.venue} listening on {scheme}://{args.host}:{port}", flush=True)
    if args.venue == "deribit":
        print(f"  REST chain: http://{args.host}:{port}/api/v2/public/get_instruments?currency=BTC")
    if args.venue == "binance":
        print(f"  REST depth: http://{args.host}:{port}/api/v3/depth?symbol=BTCUSDT", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stop.set)
    if args.fault:
        fake.spawn(_faults(fake, args.fault, args.fault_after, args.fault_every))
    try:
        await stop.wait()
    finally:
        await FakeServer.stop(fake)


def run_fake_exchange(args: argparse.Namespace) -> int:
    if args.venue == "coinbase" and "stale-snapshot" in args.fault:
        raise ConfigError("fault stale-snapshot does not apply to coinbase (snapshots are in-band)")
    applicable = {
        "binance": FAULTS,
        "coinbase": FAULTS,
        "kraken": tuple(f for f in KRAKEN_FAULTS if f != "stale-snapshot"),
        "deribit": DERIBIT_FAULTS,
    }[args.venue]
    wrong = [fault for fault in args.fault if fault not in applicable]
    if wrong:
        raise ConfigError(
            f"fault(s) {', '.join(wrong)} do not apply to {args.venue}; use {', '.join(applicable)}"
        )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_fake(args))
    return 0


COMMANDS = {"fake-exchange": run_fake_exchange, "replay-raw": run_replay_raw}
