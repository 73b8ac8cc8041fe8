"""Schema fuzzing with schemathesis, run from a worker thread against the app the trio
test serves: every operation of `/openapi.yaml`, in several variants (with and without a
token, positive and negative data), a bounded number of examples per operation and a
fixed seed. A finding is collected, not raised, so one run reports every operation that
fails; nothing is shrunk (the report carries a curl command to replay each)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

__all__ = ["FuzzRun", "Variant", "fuzz"]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
"""No 5xx; the status is documented; so are the content type and the body's shape."""


@dataclass(frozen=True)
class Variant:
    """One way of calling every operation."""

    name: str
    token: str | None
    mode: schemathesis.GenerationMode
    path_parameters: Callable[[str], dict[str, str]] = lambda path: {}
    """Fixed values of an operation's path parameters, by its path (real ids reach deep
    paths); the others are generated."""
    accept_json: bool = False


@dataclass
class FuzzRun:
    operations: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: dict[tuple[str, str], Counter[int]] = field(default_factory=dict)
    """(variant, operation) -> statuses."""
    findings: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    def report(self) -> str:
        return "\n\n".join(self.findings)


def fuzz(document: dict[str, Any], base_url: str, variants: list[Variant], *, examples: int, seed: int,
         order: Callable[[str, str], Any] = lambda method, path: 0) -> FuzzRun:
    """Call every operation of `document` with up to `examples` generated cases per variant.

    Operations run in `order(method, path)` (say, deletes last, so what they delete stays
    for the others), one variant after the other.
    """
    schema = schemathesis.openapi.from_dict(document)
    operations = [r.ok() for r in schema.get_all_operations()]
    operations.sort(key=lambda op: order(op.method.upper(), op.path))
    run = FuzzRun(operations=len(operations))
    started = time.perf_counter()
    with requests.Session() as session:
        for variant in variants:
            for op in operations:
                values = variant.path_parameters(op.path)
                fixed = {p.name: values[p.name] for p in op.path_parameters if p.name in values}
                strategy = op.as_strategy(generation_mode=variant.mode, path_parameters=fixed or None)
                _run_operation(run, session, base_url, op, strategy, variant, examples, seed)
    run.seconds = time.perf_counter() - started
    return run


def _run_operation(run: FuzzRun, session: requests.Session, base_url: str, op: Any, strategy: Any,
                   variant: Variant, examples: int, seed: int) -> None:
    seen: set[str] = set()
    statuses = run.by_operation.setdefault((variant.name, op.label), Counter())
    headers = {"Authorization": variant.token} if variant.token else {}
    if variant.accept_json:
        headers["Accept"] = "application/json"

    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @hypothesis.seed(seed)
    @given(case=strategy)
    def call(case: Any) -> None:
        # the variant decides the token: never one the generator made up
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
        except requests.RequestException as e:
            _note(run, seen, f"[{variant.name}] {op.label}: the request failed: {e!r}\n"
                             f"{case.as_curl_command(headers=headers)}")
            return
        run.statuses[response.status_code] += 1
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as e:
            _note(run, seen, f"[{variant.name}] {op.label} -> {response.status_code}\n{e}")

    try:
        call()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to negate: the operation has neither parameters nor a body


def _note(run: FuzzRun, seen: set[str], text: str) -> None:
    key = text.splitlines()[0]
    if key not in seen:
        seen.add(key)
        run.findings.append(text)
