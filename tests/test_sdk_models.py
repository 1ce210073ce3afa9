"""The client's models cannot drift from the server's: every call the SDK reads into a model goes to a
route whose declared response model has the same JSON schema (names, fields, types, defaults), and the
sync and async clients offer the same methods, a superset of the SDK the CLI and tests were written for."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from starlette.routing import Match

from computenet.api.app import create_app
from computenet.domain.states import TERMINAL_STATES
from computenet_client import AsyncComputeNetClient, ComputeNetClient, calls
from computenet_client import models as client_models
from computenet_client.calls import Call

# what each client reads, one call per kind of answer (arguments are placeholders)
MODEL_CALLS: list[Call[Any]] = [
    calls.submit("s", None, None, None, None, "native", None), calls.submit_many([{"script": "s"}]),
    calls.jobs({}), calls.job(1), calls.job_brief(1), calls.job_action(1, "cancel"), calls.job_action(1, "hold"),
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


def _schema(model: Any) -> Any:
    from pydantic import TypeAdapter

    return _plain(TypeAdapter(model).json_schema())


@pytest.fixture(scope="module")
def routes():
    from computenet.config import Settings

    class _Stub:  # create_app reads settings only; no database is touched to list the routes
        settings = Settings(_env_prefix="COMPUTENET_TEST_IGNORED_")

    try:
        app = create_app(_Stub())  # type: ignore[arg-type]
    except AttributeError as exc:  # pragma: no cover - create_app came to need more of the platform
        pytest.fail(f"create_app needs more than settings now: {exc}")
    return app.routes


def _route(routes, call: Call[Any]):
    scope = {"type": "http", "path": "/v1" + call.path, "method": call.method}
    for route in routes:
        if getattr(route, "response_model", None) is not None or hasattr(route, "endpoint"):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route
    raise AssertionError(f"no server route answers {call.method} /v1{call.path}")


@pytest.mark.parametrize("call", MODEL_CALLS, ids=lambda c: f"{c.method} {c.path}")
def test_each_client_model_is_the_servers(routes, call):
    route = _route(routes, call)
    model = getattr(call.read, "model", None)
    if call.path.startswith("/apps/"):  # a run answers a job (201), a dry run a plan: the route says neither
        assert model is client_models.JobOut
        return
    assert model is not None and route.response_model is not None, f"{call.path}: no declared response model"
    assert _schema(model) == _schema(route.response_model)


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
