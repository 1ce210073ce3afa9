"""Property-based API testing against the app's own OpenAPI document (issue 13).

Schemathesis generates requests for every operation (valid ones, and invalid
ones that must be refused), seeded and bounded, and sends them in-process as a
finance user with a funded account, so they get past authentication and most
role checks. Every answer must be no server error, a status code the
operation declares, and a body that matches the declared schema.

It tests the HTTP layer, not the store, so it runs once (on SQLite).
"""

from __future__ import annotations


import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from computenet.api.app import create_app
from computenet.services.tenancy import accounts, tenants

from conftest import add_user

SEED = 20261207
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}  # per operation: ~3 minutes on 2 busy cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# what the generator cannot know: these act on the outside world, not on input
SKIPPED = {
    ("POST", "/v1/admin/clusters"), ("PATCH", "/v1/admin/clusters/{name}"),  # would reach out to a cluster
    ("DELETE", "/v1/admin/clusters/{name}"),
    ("POST", "/v1/monitoring/samples"),  # a job agent's own token, not a user's
    ("POST", "/v1/accounts/{name}/webhooks/{endpoint_id}/test"),  # would POST to the endpoint's URL
    ("POST", "/v1/tenants/{tenant}/webhooks/{endpoint_id}/test"),  # the same
}


@pytest.fixture
def api(platform):
    with platform.db.session() as session:
        uni = tenants.create_tenant(session, "uni", "university")
        fin = accounts.create_user(session, "fin")
        fin.role = "finance"
        project = tenants.create_project(session, uni, "md-lab", fin)
        accounts.top_up(session, project, "100.00", key="schemathesis:seed")
        token = accounts.issue_token(session, fin)
    add_user(platform, "alice")
    app = create_app(platform)
    return schemathesis.openapi.from_asgi("/openapi.json", app), {"Authorization": f"Bearer {token}"}


def test_every_operation_answers_hostile_and_valid_input_as_documented(api):
    schema, headers = api
    failures: dict[str, str] = {}  # one example per operation, mode and status
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the whole API, not an empty document
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        for mode, count in EXAMPLES.items():
            failures |= _exercise(operation, mode, count, headers)
    assert not failures, f"{len(failures)} kinds of failure:\n" + "\n".join(failures) + "\n\n" + \
        "\n\n".join(list(failures.values())[:10])


def _exercise(operation, mode: GenerationMode, count: int, headers: dict) -> dict[str, str]:
    failures: dict[str, str] = {}

    @hypothesis.seed(SEED)
    @settings(max_examples=count, deadline=None, database=None, derandomize=False, print_blob=False,
              phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
              suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        where = f"{operation.method.upper()} {operation.path} ({mode.value})"
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the app raised: a 500 (the in-process client hands it to us)
            failures.setdefault(f"{where} -> {type(exc).__name__}", f"{where}: {exc!r}\n{case.as_curl_command()}")
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # every failure is reported, not only the first
            key = f"{where} -> {response.status_code}"
            failures.setdefault(key, f"{key}: {str(exc)[:1500]}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        pass  # an operation with no invalid form (no parameters) has no negative cases
    return failures
