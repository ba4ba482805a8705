"""Schemathesis over our OpenAPI schema against the real app on a real server: whatever it sends,
no 5xx, and every answer (status, content type, body) is one the schema documents. Runs closed,
once anonymous and once with a pro key, so the 401/403/429 paths are held to the schema too."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.schemas import OpenApiSchema

from helpers import make_runtime, serve_in_thread
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.feeds.simulator import SimulatorFeed
from secured import PASSWORD, TEST_TIERS

FUZZ_EXAMPLES = 20
DERANDOMIZE = "FUZZ_RANDOM" not in os.environ
"""The same examples on every CI run (a clean clone must pass or fail alike); `FUZZ_RANDOM=1`
explores new ones (random runs found the schema gaps and the one 500 fixed so far: a history
time written in Unicode digits)."""
FUZZ_EXAMPLES_HASHING = 6
"""Signup and login hash passwords (argon2, ~0.1 s each): fewer examples there."""


def _key(url: str, tiers_file: Path) -> str:
    async def make() -> str:
        accounts = await Accounts.open(url, load_tiers(tiers_file))
        try:
            user = await accounts.add_user("fuzz@example.com", PASSWORD, tier="pro")
            text, _ = await accounts.create_key(user.id, "fuzz")
            return text
        finally:
            await accounts.close()

    return asyncio.run(make())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenApiSchema, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    tiers = root / "tiers.toml"
    tiers.write_text(TEST_TIERS.replace("requests = 1000", "requests = 1000000"))
    url = f"sqlite+aiosqlite:///{root}/accounts.db"
    key = _key(url, tiers)
    settings_ = Settings(
        web_dist=None,
        anonymous_tier=None,
        accounts_url=url,
        tiers_file=tiers,
        bootstrap_admin=False,
        data_dir=root / "data",
        anonymous_requests=1_000_000,
        login_attempts=1_000_000,
    )
    # the simulator keeps the feed live, so /health and /readyz answer 200, not a 503
    app = create_app(make_runtime([SimulatorFeed()], settings_))
    with serve_in_thread(app) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json"), key


def fuzz_operation(operation: Any, headers: dict[str, str]) -> None:
    # positive_data_acceptance is left out: several rules are not expressible in the schema
    # (history start < end, configured caps, what an email address is), so a schema-valid request
    # may rightly be a 400/422. The bar: no 5xx, and answers that match the schema.
    hashing = operation.path in ("/api/v1/auth/signup", "/api/v1/auth/login")

    @given(case=operation.as_strategy())
    @settings(
        max_examples=FUZZ_EXAMPLES_HASHING if hashing else FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=DERANDOMIZE,
    )
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()


def fuzz(schema: OpenApiSchema, headers: dict[str, str]) -> int:
    """Every operation, FUZZ_EXAMPLES generated requests each; the number of operations."""
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    for operation in operations:
        fuzz_operation(operation, headers)
    return len(operations)


def test_anonymous_callers_get_only_documented_answers(
    served: tuple[OpenApiSchema, str],
) -> None:
    assert fuzz(served[0], {}) >= 25


def test_key_holders_get_only_documented_answers(served: tuple[OpenApiSchema, str]) -> None:
    assert fuzz(served[0], {"X-API-Key": served[1]}) >= 25
