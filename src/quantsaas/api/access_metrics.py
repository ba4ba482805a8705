"""Access-control metrics at /metrics: refusals by status and code, rate-limit rejections by
tier, open WebSockets by kind of caller, login outcomes and lock-out pressure (api/login.py).
Read from the app's Guard at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from quantsaas.api.metrics import PREFIX


class AccessCollector(Collector):
    def __init__(self, app_state: Any) -> None:
        self.app_state = app_state

    def collect(self) -> Iterator[Metric]:
        guard = getattr(self.app_state, "guard", None)
        if guard is None:
            return
        denied = CounterMetricFamily(
            f"{PREFIX}_requests_denied",
            "Requests and handshakes refused by access control",
            labels=["status", "code"],
        )
        for (status, code), count in sorted(guard.denied.items()):
            denied.add_metric([str(status), code], count)
        yield denied
        limited = CounterMetricFamily(
            f"{PREFIX}_rate_limited",
            "Requests refused with 429 because a quota was spent",
            labels=["quota"],
        )
        for quota, count in sorted(guard.rate_limited.items()):
            limited.add_metric([quota], count)
        yield limited
        sockets = GaugeMetricFamily(
            f"{PREFIX}_ws_sockets_by_caller",
            "Open /ws connections by kind of caller",
            labels=["caller"],
        )
        for caller, count in sorted(guard.sockets.by_caller().items()):
            sockets.add_metric([caller], count)
        yield sockets
        unwritten = GaugeMetricFamily(
            f"{PREFIX}_accounts_unwritten_revocations",
            "Revocations in force in this process whose database write failed (being retried)",
        )
        unwritten.add_metric([], len(guard.accounts.changes.unwritten))
        yield unwritten
        login = guard.login
        attempts = CounterMetricFamily(
            f"{PREFIX}_login_attempts",
            "Login attempts by outcome: ok, failed, or refused before the password was checked "
            "(account-locked, address-backoff; device-spent: a device cookie out of guesses)",
            labels=["outcome"],
        )
        for outcome, count in sorted(login.outcomes.items()):
            attempts.add_metric([outcome], count)
        yield attempts
        trusted = CounterMetricFamily(
            f"{PREFIX}_login_trusted",
            "Login attempts let through by a device cookie, or by a known address while the "
            "account was locked to unknown clients",
            labels=["by"],
        )
        for by, count in sorted(login.trusted.items()):
            trusted.add_metric([by], count)
        yield trusted
        locked = GaugeMetricFamily(
            f"{PREFIX}_login_locked_accounts",
            "Accounts that refused a login from an unknown client in the last 5 minutes",
        )
        locked.add_metric([], login.locked_accounts())
        yield locked
