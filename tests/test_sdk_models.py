"""The client's models cannot drift from the server's: every call the SDK reads into a model goes to a
route whose declared response model has the same JSON schema (names, fields, types, defaults), and the
sync and async clients offer the same methods, a superset of the SDK the CLI and tests were written for."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from computenet.api.app import create_app
from computenet.domain.states import TERMINAL_STATES
from computenet_client import AsyncComputeNetClient, ComputeNetClient, calls
from computenet_client import models as client_models
from computenet_client.calls import Call

BRIEF = calls.job_brief(1)
# what each client reads, one call per kind of answer (arguments are placeholders)
MODEL_CALLS: list[Call[Any]] = [
    calls.submit("s", None, None, None, None, "native", None), calls.submit_many([{"script": "s"}]),
    calls.jobs({}), calls.job(1), BRIEF, calls.job_action(1, "cancel"), calls.job_action(1, "hold"),
    calls.job_action(1, "release"), calls.job_action(1, "requeue"), calls.job_action(1, "update", {}),
    calls.output(1, "stdout", 0), calls.clusters(), calls.me(20), calls.usage("cluster", None, None),
    calls.notification_preferences(), calls.set_notification_preferences("off"), calls.notifications(False),
    calls.mark_read(1), calls.run_app("a", {}, False),
]
NOISE = {"title", "description", "examples", "maxLength", "minLength", "maximum", "minimum", "exclusiveMinimum",
         "exclusiveMaximum", "pattern", "maxItems", "minItems"}
# the SDK's methods before it became its own distribution (src/computenet/client at 8a0865e)
EARLIER_METHODS = {
    "submit", "submit_many", "wait_submitted", "estimate", "jobs", "job", "stats", "stats_png", "efficiency",
    "cancel", "hold", "release", "requeue", "update", "output", "follow", "wait", "clusters", "me", "usage",
    "statement", "statement_file", "statement_csv", "notification_preferences", "set_notification_preferences",
    "notifications", "mark_read", "webhooks", "add_webhook", "remove_webhook", "test_webhook",
    "webhook_deliveries", "start_session", "sessions", "session", "extend_session", "stop_session",
    "session_connect_url", "ls", "mkdir", "mv", "rm", "quota", "upload", "begin_upload", "download", "apps", "app",
    "publish_app", "review_app", "run_app", "close",
}


def _plain(schema: Any) -> Any:
    """The schema without what only documents or bounds a value (the client leaves checks to the server)."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if k not in NOISE}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """The schema with every $ref replaced by what it names (OpenAPI names a model JobOut or
    JobOut-Output; only the structure is compared)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        # FastAPI leaves "default": null out of its document; pydantic writes it
        return {k: _inline(v, defs) for k, v in schema.items()
                if k not in NOISE and k != "$defs" and not (k == "default" and v is None)}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _client_schema(model: Any) -> Any:
    from pydantic import TypeAdapter

    schema = TypeAdapter(model).json_schema(mode="serialization")
    return _inline(schema, schema.get("$defs", {}))


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    from computenet.config import Settings

    class _Stub:  # create_app reads settings only; listing the routes touches no database
        settings = Settings(_env_prefix="COMPUTENET_TEST_IGNORED_")

    return create_app(_Stub()).openapi()  # type: ignore[arg-type]


def _answer_schema(openapi: dict[str, Any], call: Call[Any]) -> Any:
    """The JSON schema of the route's success answer, as the server's OpenAPI document declares it."""
    for template, operations in openapi["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, "/v1" + call.path) and call.method.lower() in operations:
            responses = operations[call.method.lower()]["responses"]
            schemas = [r["content"]["application/json"]["schema"] for code, r in responses.items()
                       if code.startswith("2") and "schema" in r.get("content", {}).get("application/json", {})]
            declared = [_inline(schema, openapi["components"]["schemas"]) for schema in schemas]
            assert all(d == declared[0] for d in declared), f"{template}: answers of different shapes"
            return declared[0] if declared and declared[0] else None
    raise AssertionError(f"no server route answers {call.method} /v1{call.path}")


@pytest.mark.parametrize("call", MODEL_CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_each_client_model_is_the_servers(openapi, call):
    declared = _answer_schema(openapi, call)
    model = getattr(call.read, "model", None)
    if call.path.startswith("/apps/"):  # a run answers a job (201), a dry run a plan: the route says neither
        assert model is client_models.JobOut and declared in (None, {})
        return
    assert model is not None and declared, f"{call.method} {call.path}: no declared response model"
    mine = _client_schema(model)
    if call is BRIEF:  # wait_submitted() reads a job's detail as the shorter JobOut: every field it has agrees
        assert {k: declared["properties"][k] for k in mine["properties"]} == mine["properties"]
        assert set(mine["required"]) <= set(declared["required"])
        return
    assert mine == declared


def test_request_models_carry_the_servers_fields():
    from computenet import schemas

    for name in ("RoutingIn", "JobSubmit"):
        server, client = getattr(schemas, name), getattr(client_models, name)
        assert set(client.model_fields) == set(server.model_fields), name


def test_terminal_states_are_the_servers():
    assert client_models.TERMINAL_STATES == {s.value for s in TERMINAL_STATES}


def _methods(cls: type) -> dict[str, list[str]]:
    return {name: [p for p in inspect.signature(fn).parameters] for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_")}


def test_sync_and_async_offer_the_same_calls():
    sync, aio = _methods(ComputeNetClient), _methods(AsyncComputeNetClient)
    assert EARLIER_METHODS <= set(sync)
    sync.pop("close"), aio.pop("aclose")
    assert sync == aio
    for name in sync:
        wanted = inspect.iscoroutinefunction(getattr(AsyncComputeNetClient, name)) or \
            inspect.isasyncgenfunction(getattr(AsyncComputeNetClient, name))
        assert wanted, f"AsyncComputeNetClient.{name} is not async"


def test_the_sdk_passes_mypy_strict(tmp_path):
    """py.typed is a promise: the package itself type-checks under --strict (its own config, clients/python)."""
    import subprocess
    import sys
    from pathlib import Path

    client = Path(__file__).resolve().parent.parent / "clients" / "python"
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path),
                           "src/computenet_client"], cwd=client, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
