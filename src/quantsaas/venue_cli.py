"""Venue commands of the CLI: `fake-exchange` (run a local fake venue) and `replay-raw`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson

from quantsaas.errors import ConfigError

if TYPE_CHECKING:
    # `serve` builds the whole parser: the fakes and the venue feeds load only for these commands
    from quantsaas.fakes.binance import FakeBinance
    from quantsaas.fakes.coinbase import FakeCoinbase
    from quantsaas.fakes.deribit import FakeDeribit
    from quantsaas.fakes.kraken import FakeKraken

VENUES = ("binance", "coinbase", "kraken", "deribit")
"""The venues of both commands (replay_raw.VENUES, fakes/; tests/fakes/test_venue_cli.py)."""
FAULT_NAMES = (
    "drop",
    "gap",
    "stale-snapshot",
    "malformed",
    "big-snapshot",
    "shutdown",
    "silent",
    "checksum",
    "maintenance",
)
"""Every fake's fault names (fakes/server.py FAULTS and Kraken's own); which apply to which
venue is checked by `run_fake_exchange` against the fakes' own tuples."""


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_commands(commands: Any) -> None:
    fake = commands.add_parser("fake-exchange", help="run a local fake venue (real wire protocol)")
    fake.add_argument("venue", choices=VENUES)
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
        help="native symbols (BTCUSDT, BTC-USD, BTC/USD); deribit: currencies (BTC,ETH). With "
        "--replay: any products, listed besides those the file names",
    )
    fake.add_argument(
        "--tls",
        action="store_true",
        help="serve wss:// and https:// with a certificate made at start; prints its CA file "
        "(trust it with `serve --ca-file` or QUANTSAAS_CA_FILE)",
    )
    fake.add_argument(
        "--tls-dir", type=Path, help="where --tls writes ca.pem (default: a temp dir)"
    )
    fake.add_argument("--rate", type=float, default=50.0, help="simulated events/s per symbol")
    fake.add_argument("--seed", type=int, default=11, help="market seed (serve's sim uses 7)")
    fake.add_argument(
        "--fault",
        action="append",
        choices=FAULT_NAMES,
        default=[],
        help="inject this fault after --fault-after seconds (repeatable); checksum and "
        "maintenance: kraken only",
    )
    fake.add_argument("--fault-after", type=float, default=5.0)
    fake.add_argument(
        "--fault-every", type=float, default=0.0, help="repeat the faults every N seconds (0: once)"
    )
    fake.add_argument(
        "--replay",
        type=Path,
        help="send this recorded file's lines verbatim instead of simulating (after the "
        "client subscribes; nothing of the fake's own is mixed in)",
    )
    fake.add_argument("--replay-rate", type=float, default=200.0, help="replayed lines per second")
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
    from quantsaas.replay_raw import replay_raw

    result = replay_raw(args.venue, args.frames, args.snapshot)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


Fake: TypeAlias = "FakeBinance | FakeCoinbase | FakeKraken | FakeDeribit"


def build_fake(args: argparse.Namespace) -> Fake:
    """The configured fake; ConfigError for a product it cannot simulate or a missing file."""
    from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
    from quantsaas.fakes.coinbase import CoinbaseFakeConfig, FakeCoinbase
    from quantsaas.fakes.deribit import DeribitFakeConfig, FakeDeribit
    from quantsaas.fakes.kraken import FakeKraken, KrakenFakeConfig
    from quantsaas.fakes.tls import make_tls

    if args.replay is not None and not args.replay.is_file():
        raise ConfigError(f"--replay: no such file {str(args.replay)[:100]!r}")
    if args.replay_rate <= 0:
        raise ConfigError("--replay-rate must be positive")
    symbols = args.symbols or ()  # empty: each fake's defaults, or a replay file's products
    replay = {"replay": args.replay, "replay_per_s": args.replay_rate}
    fake: Fake
    if args.venue == "kraken":
        fake = FakeKraken(
            KrakenFakeConfig(
                symbols=symbols,
                rate=args.rate,
                seed=args.seed,
                maintenance_s=args.maintenance,
                **replay,
            )
        )
    elif args.venue == "deribit":
        fake = FakeDeribit(
            DeribitFakeConfig(
                currencies=symbols or ("BTC", "ETH"), rate=args.rate, seed=args.seed, **replay
            )
        )
    elif args.venue == "binance":
        fake = FakeBinance(
            BinanceFakeConfig(
                symbols=symbols,
                rate=args.rate,
                seed=args.seed,
                lifetime_s=args.lifetime,
                snapshot=args.snapshot,
                **replay,
            )
        )
    else:
        fake = FakeCoinbase(
            CoinbaseFakeConfig(
                api=args.api, symbols=symbols, rate=args.rate, seed=args.seed, **replay
            )
        )
    if args.tls:
        fake.tls = make_tls(args.tls_dir)
    return fake


async def _faults(fake: Fake, faults: list[str], after: float, every: float) -> None:
    await asyncio.sleep(after)
    while True:
        for fault in faults:
            fake.inject(fault)
        if every <= 0:
            return
        await asyncio.sleep(every)


async def _run_fake(args: argparse.Namespace, fake: Fake) -> None:
    from quantsaas.fakes.server import FakeServer

    try:
        port = await fake.start(args.host, args.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    http = "https" if fake.tls is not None else "http"
    base = f"{args.host}:{port}"
    print(f"fake {args.venue} listening on {fake.scheme}://{base}", flush=True)
    if fake.tls is not None:
        print(f"  CA certificate: {fake.tls.ca_file}", flush=True)
    if args.venue == "deribit":
        print(f"  REST chain: {http}://{base}/api/v2/public/get_instruments?currency=BTC")
    if args.venue == "binance":
        print(f"  REST depth: {http}://{base}/api/v3/depth?symbol=BTCUSDT", flush=True)
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
    from quantsaas.fakes.deribit import DERIBIT_FAULTS
    from quantsaas.fakes.kraken import KRAKEN_FAULTS
    from quantsaas.fakes.server import FAULTS

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
    fake = build_fake(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_fake(args, fake))
    return 0


COMMANDS = {"fake-exchange": run_fake_exchange, "replay-raw": run_replay_raw}
