"""Command line: `quantsaas serve ...`, `fake-exchange`, `replay-raw` (venue_cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

import quantsaas.serving_env  # noqa: F401  (first: before NumPy loads)
from quantsaas import __version__
from quantsaas import history_cli as store_cli
from quantsaas.accounts import cli as accounts_cli
from quantsaas.backtest import cli as backtest_cli
from quantsaas.client import cli as client_cli
from quantsaas.config import Settings
from quantsaas.errors import ConfigError, StorageError, UnknownInstrument, clip
from quantsaas.logs import configure_logging, printable
from quantsaas.store import importer_cli
from quantsaas.venue_cli import COMMANDS as VENUE_COMMANDS
from quantsaas.venue_cli import add_commands as add_venue_commands

if TYPE_CHECKING:
    # imported by `serve` itself: the other commands load no web server
    import uvicorn
    from fastapi import FastAPI

log = logging.getLogger("quantsaas")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="quantsaas", description="Quant-SaaS market-data service")
    root.add_argument("--version", action="version", version=f"quantsaas {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the feeds and the HTTP/WebSocket API")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000; 0 picks a free one)")
    serve.add_argument("--feeds", type=_csv, help="comma-separated feeds (default: sim)")
    serve.add_argument("--symbols", type=_csv, help="comma-separated symbols, e.g. BTC/USD,ETH/USD")
    serve.add_argument("--rate", type=float, help="simulator events per second per symbol")
    serve.add_argument("--seed", type=int, help="simulator random seed")
    serve.add_argument("--vol", type=float, help="simulator annualised volatility (0.6 = 60%%)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log lines: text (default) or json (one object per line; QUANTSAAS_LOG_FORMAT)",
    )
    serve.add_argument("--binance-ws", help="Binance WebSocket base URL (e.g. a fake's ws://...)")
    serve.add_argument("--binance-rest", help="Binance REST base URL")
    serve.add_argument("--binance-symbols", type=_csv, help="e.g. BTC/USDT,ETH/USDT")
    serve.add_argument("--coinbase-ws", help="Coinbase WebSocket URL")
    serve.add_argument("--coinbase-api", choices=["exchange", "advanced"], help="Coinbase feed")
    serve.add_argument("--coinbase-symbols", type=_csv, help="e.g. BTC/USD,ETH/USD")
    serve.add_argument("--stall", type=float, help="reconnect a venue after this many s of silence")
    serve.add_argument(
        "--ca-file", type=Path, help="also trust this CA for venues (a fake-exchange --tls CA)"
    )
    serve.add_argument(
        "--anonymous-tier",
        help="serve callers without credentials with this tier (the demo uses `demo`: the "
        "simulator only); default: they get the public, delayed view and nothing else",
    )
    serve.add_argument("--accounts-url", help="accounts database (SQLAlchemy async URL)")
    serve.add_argument(
        "--forwarded-allow-ips",
        help="proxies trusted for X-Forwarded-For/-Proto (default 127.0.0.1; CIDRs allowed)",
    )
    serve.add_argument(
        "--rate-limit-bus", help="memory (default) or redis://... to share limits between processes"
    )
    serve.add_argument(
        "--role",
        choices=["all", "ingest", "api"],
        default="all",
        help="all: feeds and API in one process; ingest: feeds + API, publishing to --bus; "
        "api: serve clients from --bus only (docs/architecture.md)",
    )
    serve.add_argument(
        "--bus", default="memory", help="memory (default) or redis://host:port/db for scale-out"
    )
    serve.add_argument(
        "--no-warm-start",
        action="store_true",
        help="do not simulate the past hours into an empty history at the first start",
    )
    store_cli.add_store_options(serve)
    add_venue_commands(commands)
    backtest_cli.add_commands(commands)
    importer_cli.add_commands(commands)
    client_cli.add_commands(commands)
    accounts_cli.add_commands(commands)
    store_cli.add_commands(commands, serve)
    return root


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("feeds", args.feeds),
            ("symbols", args.symbols),
            ("sim_rate", args.rate),
            ("sim_seed", args.seed),
            ("sim_vol", args.vol),
            ("binance_ws_url", args.binance_ws),
            ("binance_rest_url", args.binance_rest),
            ("binance_symbols", args.binance_symbols),
            ("coinbase_ws_url", args.coinbase_ws),
            ("coinbase_api", args.coinbase_api),
            ("coinbase_symbols", args.coinbase_symbols),
            ("feed_stall_s", args.stall),
            ("ca_file", getattr(args, "ca_file", None)),
            ("anonymous_tier", getattr(args, "anonymous_tier", None)),
            ("accounts_url", getattr(args, "accounts_url", None)),
            ("rate_limit_bus", getattr(args, "rate_limit_bus", None)),
            ("forwarded_allow_ips", getattr(args, "forwarded_allow_ips", None)),
            ("log_format", getattr(args, "log_format", None)),
            ("sim_warm_start_hours", 0.0 if getattr(args, "no_warm_start", False) else None),
        )
        if value is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(problems) from None


def server_config(app: Any, settings: Settings, log_level: str) -> uvicorn.Config:
    """How `serve` runs the API (the benchmarks use the same)."""
    import uvicorn

    from quantsaas.api.intake import server_options
    from quantsaas.api.wsserver import FanoutProtocol

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # uvicorn's sans-I/O protocol + frames made once and written once per loop turn
        ws=FanoutProtocol,
        ws_max_size=settings.ws_max_message_bytes,
        # compressed once per message, not per client (wsframe.py, bench/README.md)
        ws_per_message_deflate=settings.ws_compression,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=log_level,
        # logging is ours (logs.py): uvicorn's loggers propagate to it; the access log is
        # written by RequestIdMiddleware (with request ids, without query strings)
        log_config=None,
        access_log=False,
        lifespan="on",
        **server_options(settings),  # bounded request heads (api/intake.py)
    )


def tune_gc_for_serving() -> None:
    """Everything imported and built at startup lives as long as the process: keep it out of
    the collector and collect less often, so full collections stop pausing the stream (worst
    pause 131 ms -> 16 ms with 1,000 clients, bench/README.md)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def access_note(settings: Settings, first_login: tuple[str, str] | None) -> str:
    if settings.anonymous_tier is not None:
        lines = f"  access:                     open to anyone as tier {settings.anonymous_tier}\n"
    else:
        lines = "  access:                     API key, or sign in on the dashboard\n"
    if first_login is not None:
        email, password = first_login
        lines += (
            f"  first start: admin account  {email}  password {password}\n"
            "                              (shown once; see `quantsaas users --help`)\n"
        )
    return lines


async def _serve(server: uvicorn.Server, settings: Settings, app: FastAPI) -> int:
    """Serve until stopped; 1 if the server or its accounts could not start."""
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.005)
    if not server.started:
        await asyncio.gather(task, return_exceptions=True)
        return 1
    # the accounts open beside the running service (api/app.py); the banner names the admin
    opening = app.state.accounts_opening
    await asyncio.wait({opening, task}, return_when=asyncio.FIRST_COMPLETED)
    if not opening.done() or opening.cancelled():  # stopped (Ctrl+C) before they opened
        await asyncio.gather(task, return_exceptions=True)
        return 0
    failure = opening.exception()
    if failure is not None:
        print(f"quantsaas: error: accounts: {printable(clip(str(failure)))}", file=sys.stderr)
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        return 1
    tune_gc_for_serving()
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://{settings.host}:{port}"
    print(
        f"\nQuant-SaaS is running on {base}/\n"
        f"  dashboard and service info: {base}/\n"
        f"  API docs:                   {base}/docs\n"
        f"  health:                     {base}/health\n"
        f"  stream:                     ws://{settings.host}:{port}/ws\n"
        f"  history:                    {store_cli.recording_note(settings)}\n"
        f"{access_note(settings, app.state.first_login)}"
        "Press Ctrl+C to stop.\n",
        flush=True,
    )
    log.info("serving on %s", base, extra={"url": base})
    await task
    return 0


def check_port_free(host: str, port: int) -> None:
    """A port already in use is one clear line (exit 2), not uvicorn's startup traceback."""
    if port == 0:
        return
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(settings: Settings, log_level: str, role: str = "all", bus: str = "memory") -> int:
    import uvicorn

    from quantsaas import runtime
    from quantsaas.api.app import create_app

    check_port_free(settings.host, settings.port)
    configure_logging(log_level, settings.log_format)
    if role == "api":
        settings = settings.model_copy(update={"record": False})
    if bus != "memory" and settings.rate_limit_bus == "memory":
        # several processes serve clients: they must share one budget per key
        settings = settings.model_copy(update={"rate_limit_bus": bus})
    built = runtime.build(settings, role, bus_url=bus, record=settings.record)
    if built.recorder is not None:  # first start: the simulator's past hours, in the background
        from quantsaas.store import warmstart

        warm = warmstart.plan(settings.data_dir, built.feeds, settings.sim_warm_start_hours)
        if warm is not None:
            built.jobs.append(warmstart.WarmStartJob(warm))
    app = create_app(built)
    config = server_config(app, settings, log_level)
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it has shut down; with these handlers
    # installed that re-raise is a no-op, so a requested stop ends with status 0, no traceback.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    # uvloop when installed (uvicorn[standard]): about a fifth less CPU per WebSocket message
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        return runner.run(_serve(server, settings, app))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in accounts_cli.COMMANDS:
        return accounts_cli.COMMANDS[args.command](args)
    if args.command in backtest_cli.COMMANDS:
        return backtest_cli.COMMANDS[args.command](args)
    if args.command in importer_cli.COMMANDS:
        return importer_cli.COMMANDS[args.command](args)
    if args.command in client_cli.COMMANDS:
        return client_cli.COMMANDS[args.command](args)
    if args.command in VENUE_COMMANDS:
        try:
            return VENUE_COMMANDS[args.command](args)
        except (ConfigError, OSError, ValueError) as exc:
            print(f"quantsaas: error: {printable(clip(str(exc)))}", file=sys.stderr)
            return 2
    try:
        settings = store_cli.with_store_options(settings_from(args), args)
        if args.command in store_cli.COMMANDS:
            return store_cli.COMMANDS[args.command](settings, args)
        if args.command == "serve":
            return serve(settings, args.log_level, args.role, args.bus)
    except (ConfigError, UnknownInstrument, StorageError) as exc:
        print(f"quantsaas: error: {printable(clip(str(exc)))}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
