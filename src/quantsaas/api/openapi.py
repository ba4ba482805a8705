"""Make the OpenAPI document say exactly what the service does, so clients and schemathesis
(tests/api/test_openapi_fuzz.py, every check it offers) can hold us to it.

- Configured caps: a query parameter declared with `json_schema_extra=cap("max_book_depth")`
  gets the setting's value as its `maximum` when the document is built, and the route checks the
  same setting at run time (`problems.check_at_most`): 1000 levels, 1000 or 10,000 rows by
  default, whatever the operator configured.
- Bodies: every operation with a request body documents 400 (a body that is not UTF-8 JSON)
  and 413 (over its cap, api/intake.py); a 422 is problem+json (FastAPI documents its own
  shape).
- 405: the `Allow` header lists the methods the document has for the path (routing knows only
  the first route it matched, one per method).
"""

from __future__ import annotations

import re
from typing import Any

from quantsaas.api.problems import PROBLEM_JSON
from quantsaas.config import Settings

CAP = "x-quantsaas-cap"
_PARAM = re.compile(r"\\\{[^/]+?\\\}")
_BODY_ERRORS = {
    "400": "The body is not UTF-8 JSON",
    "413": "The body is larger than this route accepts",
}


def cap(setting: str) -> dict[str, Any]:
    """`json_schema_extra` of a query parameter whose maximum is the setting `setting`."""
    return {CAP: setting}


def _problem(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}


def finish(schema: dict[str, Any], settings: Settings) -> None:
    """Write configured caps and body errors into a generated document (in place)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                parameter_schema = parameter.get("schema", {})
                setting = parameter_schema.pop(CAP, None)
                if setting is not None:
                    parameter_schema["maximum"] = int(getattr(settings, setting))
            responses = operation.setdefault("responses", {})
            if "422" in responses:  # FastAPI documents its own shape; ours is problem+json
                responses["422"] = _problem("Invalid request parameters")
            if "requestBody" in operation:
                for status, description in _BODY_ERRORS.items():
                    responses.setdefault(status, _problem(description))


class AllowTable:
    """Documented methods by path, matched like the router matches templates."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._paths: list[tuple[re.Pattern[str], str]] = []
        for template, operations in schema.get("paths", {}).items():
            methods = {method.upper() for method in operations}
            if "GET" in methods:
                methods.add("HEAD")  # served for every GET route
            pattern = re.compile(_PARAM.sub("[^/]+", re.escape(template)) + "$")
            self._paths.append((pattern, ", ".join(sorted(methods))))

    def allow(self, path: str) -> str | None:
        for pattern, methods in self._paths:
            if pattern.match(path):
                return methods
        return None
