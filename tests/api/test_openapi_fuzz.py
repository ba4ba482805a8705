"""Schemathesis over our OpenAPI schema against the real app on a real server, the way its CLI
runs (its engine in process): the examples, coverage, fuzzing and stateful phases, positive and
negative data, and every check it offers. Whatever it sends: no 5xx, every answer (status,
content type, headers, body) is one the schema documents, schema-invalid requests are refused,
an undeclared method is a 405 with `Allow`, a protected operation refuses missing credentials.
Runs closed, once anonymous and once with a pro key, so the 401/403/429 paths are held too.

Left out, with the reason:
- `positive_data_acceptance` on signup and on the history routes only: their rules cannot be
  written in OpenAPI (what an email address is, per email-validator; history `start` before
  `end`, the longest range and the tier's reach), so a schema-valid request may rightly be a
  400/422 there. Everywhere else it runs.
- `max_response_time`: speed is measured in bench/ as same-run ratios, not as timed tests on
  a shared machine.
- `use_after_free` and `ensure_resource_availability` run in the stateful phase, which needs
  links between operations; the schema declares none, so they have nothing to follow.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from helpers import make_runtime, serve_in_thread
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.feeds.simulator import SimulatorFeed
from secured import PASSWORD, TEST_TIERS

FUZZ_EXAMPLES = 12
DETERMINISTIC = "FUZZ_RANDOM" not in os.environ
"""The same cases on every CI run (a clean clone must pass or fail alike); `FUZZ_RANDOM=1`
explores new ones (random runs found the schema gaps and the 500s fixed so far)."""
RULES_OUTSIDE_THE_SCHEMA = r"^/api/v1/(auth/signup|history/)"


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
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    tiers = root / "tiers.toml"
    tiers.write_text(TEST_TIERS.replace("requests = 1000", "requests = 1000000"))
    url = f"sqlite+aiosqlite:///{root}/accounts.db"
    key = _key(url, tiers)
    settings = Settings(
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
    app = create_app(make_runtime([SimulatorFeed()], settings))
    with serve_in_thread(app) as base:
        yield f"{base}/openapi.json", key


@dataclass(frozen=True)
class Failure:
    operation: str
    check: str
    method: str
    path: str
    status: int | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.operation} [{self.check}] {self.method} {self.path} -> {self.status}: "
            + (self.message.replace("\n", " ")[:300])
        )


def fuzz(schema_url: str, headers: dict[str, str]) -> tuple[int, int, list[Failure]]:
    """Run schemathesis' engine; (operations tested, checks run, failures)."""
    config = SchemathesisConfig.from_dict(
        {
            "headers": headers,
            "phases": {
                name: {"enabled": True} for name in ("examples", "coverage", "fuzzing", "stateful")
            },
            "generation": {
                "mode": "all",
                "max-examples": FUZZ_EXAMPLES,
                "deterministic": DETERMINISTIC,
                "database": "none",  # hermetic: no examples replayed from earlier runs
            },
            "operations": [
                {
                    "include-path-regex": RULES_OUTSIDE_THE_SCHEMA,
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                }
            ],
        }
    )
    schema = schemathesis.openapi.from_url(schema_url, config=config)
    operations: set[str] = set()
    checks = 0
    failures: list[Failure] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.FatalError | events.NonFatalError):
            failures.append(Failure("-", "engine", "-", "-", None, str(event)))
        if not isinstance(event, events.ScenarioFinished):
            continue
        recorder = event.recorder
        if recorder.cases:
            operations.add(recorder.label)
        for case_id, results in recorder.checks.items():
            checks += len(results)
            for result in results:
                if result.status != Status.FAILURE:
                    continue
                case = recorder.cases[case_id].value
                interaction = recorder.interactions.get(case_id)
                response = None if interaction is None else interaction.response
                message = "" if result.failure_info is None else str(result.failure_info.failure)
                message += f" (body {str(case.body)[:100]!r})"
                failures.append(
                    Failure(
                        recorder.label,
                        result.name,
                        case.method,
                        case.path,
                        None if response is None else response.status_code,
                        message,
                    )
                )
    return len(operations), checks, failures


def _report(failures: list[Failure]) -> str:
    unique = {(f.operation, f.check): f for f in failures}
    return "\n".join(str(failure) for failure in unique.values())


def test_anonymous_callers_get_only_documented_answers(served: tuple[str, str]) -> None:
    operations, checks, failures = fuzz(served[0], {})
    assert not failures, _report(failures)
    assert operations >= 25 and checks > 2000


def test_key_holders_get_only_documented_answers(served: tuple[str, str]) -> None:
    operations, checks, failures = fuzz(served[0], {"X-API-Key": served[1]})
    assert not failures, _report(failures)
    assert operations >= 25 and checks > 2000


def test_every_documented_path_answers_other_methods_with_405_and_allow(
    served: tuple[str, str],
) -> None:
    import httpx

    base = served[0].removesuffix("/openapi.json")
    document: dict[str, Any] = httpx.get(served[0]).json()
    for template, operations in document["paths"].items():
        path = template.replace("{venue}", "sim").replace("{symbol}", "BTC-USD")
        path = path.replace("{currency}", "BTC").replace("{key_id}", "nokey")
        documented = {method.upper() for method in operations}
        answer = httpx.request("PATCH" if "PATCH" not in documented else "PUT", base + path)
        assert answer.status_code == 405, path
        allowed = {m.strip() for m in answer.headers["allow"].split(",")} - {"HEAD"}
        assert allowed == documented, path
