"""Who may try a password, and how often: login limits that hold and do not lock the owner out.

Every attempt passes, in this order, before its password is verified:

1. the per-IP `login` quota (api/auth.py, as for every route);
2. a client with a valid device cookie of this account (accounts/trust.py) spends one unit of
   its own failure budget (`DEVICE_FAILURES`, per cookie) and goes ahead: neither the account's
   limit nor its address's back-off applies to a browser that signed in to it before;
3. any other client first reserves an attempt of its address's exponential back-off
   (api/backoff.py: free attempts, then 1 s, 2 s, 4 s ... up to 15 min), then one unit of the
   account's failure budget (`ACCOUNT_FAILURES`). When the account's budget is spent only an
   address the user signed in from before may still try; everyone else gets 429.

Reservations are made before the password is verified, so concurrent guesses cannot all pass
a check made before any failure was counted; a right password gives its reservations back.
Refusals are counted by reason for /metrics (`outcomes`), and `locked_accounts` tells how many
accounts refused a login in the last window: the lock-out pressure.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quantsaas.accounts.views import lookup_email
from quantsaas.api.backoff import BackoffPolicy, backoff_for, wait_text
from quantsaas.api.problems import Problem
from quantsaas.api.ratelimit import Limiter, Quota, client_bucket
from quantsaas.errors import InvalidEmail

if TYPE_CHECKING:
    from quantsaas.accounts.service import Accounts

ACCOUNT_FAILURES = Quota("login-account", 5, 300.0)
"""Logins to one account from clients it has not seen succeed, before only known ones may try."""
DEVICE_FAILURES = Quota("login-device", 5, 300.0)
"""Wrong passwords one device cookie may send; then it is a client like any other."""
ADDRESS_BACKOFF = BackoffPolicy(free=5, base_s=1.0, cap_s=900.0, forget_s=900.0)
DEVICE_COOKIE = "qs_device"
OUTCOMES = ("ok", "failed", "account-locked", "address-backoff", "device-spent")


@dataclass
class Attempt:
    email: str
    address: str
    device: str | None = None
    account_reserved: bool = False
    address_reserved: bool = False
    trusted: str | None = None
    """`address` when a known address let the attempt past the account's spent budget."""


class LoginGate:
    def __init__(self, accounts: Accounts, limiter: Limiter) -> None:
        self.accounts = accounts
        self.limiter = limiter
        self.backoff = backoff_for(limiter, ADDRESS_BACKOFF)
        self.outcomes: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})
        self.trusted: Counter[str] = Counter({"device": 0, "address": 0})
        self._locked: dict[str, float] = {}  # account -> last refusal (monotonic s)

    async def admit(self, email_text: str, ip: str, device_cookie: str | None) -> Attempt:
        """Reserve what this attempt may spend, or raise the 429 Problem refusing it."""
        try:
            email = lookup_email(email_text)
        except InvalidEmail:  # no such account can exist: counted under its own text
            email = email_text.strip().lower()[:254]
        attempt = Attempt(email, client_bucket(ip))
        nonce = self.accounts.trust.device_of(device_cookie, email, time.time())
        if nonce is not None:
            if (await self.limiter.hit(f"device:{nonce}", DEVICE_FAILURES)).allowed:
                attempt.device = nonce
                self.trusted["device"] += 1
                return attempt
            self.outcomes["device-spent"] += 1  # then it is treated as an unknown client
        wait = await self.backoff.reserve(f"login:{attempt.address}")
        if wait > 0:
            self.outcomes["address-backoff"] += 1
            raise Problem(
                429,
                "rate-limited",
                f"too many failed logins from your address; retry in {wait_text(wait)}",
                {"Retry-After": wait_text(wait).removesuffix(" s")},
            )
        attempt.address_reserved = True
        decision = await self.limiter.hit(f"login:{email}", ACCOUNT_FAILURES)
        if decision.allowed:
            attempt.account_reserved = True
        elif await self.accounts.trust.is_known(email, attempt.address):
            attempt.trusted = "address"
            self.trusted["address"] += 1
        else:
            self.outcomes["account-locked"] += 1
            self._locked[email] = time.monotonic()
            retry = decision.retry_after_s
            raise Problem(
                429,
                "login-locked",
                "too many failed logins for this account from unknown devices; sign in from a "
                f"device or address that signed in before, or retry in {wait_text(retry)}",
                {"Retry-After": wait_text(retry).removesuffix(" s")},
            )
        return attempt

    def failed(self, attempt: Attempt) -> None:
        """A wrong password (or no such user): what the attempt reserved stays spent."""
        self.outcomes["failed"] += 1

    async def succeeded(self, attempt: Attempt, user_id: int) -> str:
        """The right password: give back what the attempt reserved, remember the address,
        and hand out a fresh device cookie."""
        self.outcomes["ok"] += 1
        if attempt.device is not None:
            await self.limiter.refund(f"device:{attempt.device}", DEVICE_FAILURES)
        if attempt.account_reserved:
            await self.limiter.refund(f"login:{attempt.email}", ACCOUNT_FAILURES)
        if attempt.address_reserved:
            await self.backoff.refund(f"login:{attempt.address}")
        await self.accounts.trust.remember(user_id, attempt.address)
        return self.accounts.trust.device_cookie(attempt.email, time.time())

    def locked_accounts(self, window_s: float = ACCOUNT_FAILURES.window_s) -> int:
        """Accounts that refused a login to an unknown client in the last `window_s`."""
        cutoff = time.monotonic() - window_s
        self._locked = {email: at for email, at in self._locked.items() if at >= cutoff}
        return len(self._locked)
