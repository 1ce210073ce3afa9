"""The versioned API (issue 20 item 5): /v1 paths, the unversioned aliases and their deprecation
headers, RFC 9457 problems with stable codes, cursor links, and rate limits with Retry-After.
HTTP-layer behaviour: an app in-process on SQLite (runs once)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from computenet.api.app import create_app
from computenet.api.problems import CODES
from computenet.config import ServerConfig
from computenet.services.tenancy import accounts

from conftest import add_user, local_cluster

DOCS = Path(__file__).parent.parent / "docs" / "api.md"


@pytest.fixture
def api(make_platform):
    def build(**server):
        platform = make_platform([local_cluster()], server=ServerConfig(**server))
        _, token = add_user(platform, "vera")
        return TestClient(create_app(platform)), {"Authorization": f"Bearer {token}"}, platform
    return build


def test_every_route_is_under_v1_and_the_old_paths_are_aliases_that_say_so(api):
    client, auth, _ = api()
    paths = client.get("/openapi.json").json()["paths"]
    # all but the browser's OIDC sign-in flow, whose callback is registered at the provider
    assert paths and all(p.startswith("/v1/") or p.startswith("/auth/oidc") for p in paths)
    new = client.get("/v1/accounts/me", headers=auth)
    old = client.get("/accounts/me", headers=auth)
    assert new.status_code == old.status_code == 200 and new.json() == old.json()
    assert "deprecation" not in new.headers
    assert old.headers["deprecation"].startswith("@") and "2027" in old.headers["sunset"]
    assert old.headers["link"] == '</v1/accounts/me>; rel="successor-version"'


def test_a_crafted_alias_path_cannot_put_a_line_break_into_the_link_header(api):
    client, auth, _ = api()
    answer = client.get("/jobs/%0d%0aSet-Cookie:x=1", headers=auth)
    assert answer.status_code == 422 and "set-cookie" not in answer.headers
    assert "\n" not in answer.headers["link"] and "%0d%0a" in answer.headers["link"].lower()


@pytest.mark.parametrize("path, status, code", [
    ("/v1/jobs/999999", 404, "not_found"),      # a service's NotFound
    ("/v1/jobs/abc", 422, "validation_failed"),  # the validator
    ("/v1/nowhere", 404, "not_found"),           # no such route
])
def test_errors_are_problems_with_stable_codes(api, path, status, code):
    client, auth, _ = api()
    answer = client.get(path, headers=auth)
    assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == code and body["status"] == status and body["instance"] == path
    assert body["title"] == CODES[code][1] and body["detail"]
    explained = client.get(body["type"])  # the type resolves, and says what the code means
    assert explained.status_code == 200 and explained.json()["code"] == code


def test_unauthenticated_keeps_its_www_authenticate_header(api):
    client, _, _ = api()
    answer = client.get("/v1/jobs")
    assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_insufficient_funds_is_its_own_code(api):
    client, auth, _ = api()
    answer = client.post("/v1/jobs", headers=auth, json={"script": "#!/bin/bash\n#SBATCH -c 2 -t 24:00:00\nsleep 1\n"})
    assert answer.status_code == 402 and answer.json()["code"] == "insufficient_funds"


def test_every_code_is_documented(api):
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), re.M))
    assert documented == set(CODES)


def test_a_full_page_of_jobs_links_to_the_next_and_the_pages_do_not_overlap(api):
    client, auth, platform = api()
    for n in range(5):
        assert client.post("/v1/jobs", headers=auth, json={"script": f"#!/bin/bash\n#SBATCH -t 1 -H\ntrue {n}\n"}
                           ).status_code in (201, 202)  # accepted (then submitted by a worker)
    seen, url = [], "/v1/jobs?limit=2"
    while url:
        page = client.get(url, headers=auth)
        seen += [job["id"] for job in page.json()]
        match = re.match(r'<([^>]+)>; rel="next"', page.headers.get("link", ""))
        url = match.group(1) if match else None
    assert len(seen) == 5 and seen == sorted(set(seen), reverse=True)


def test_a_caller_over_its_rate_is_told_when_to_come_back_and_others_are_not_slowed(api):
    client, auth, platform = api(rate_limit="3/minute")
    answers = [client.get("/v1/accounts/me", headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited" and 1 <= int(refused.headers["retry-after"]) <= 60
    with platform.db.session() as session:  # another token is another caller
        other = accounts.issue_token(session, accounts.get_user(session, "vera"), "second")
    assert client.get("/v1/accounts/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_a_rate_limit_that_is_not_a_rule_is_refused_by_the_config():
    with pytest.raises(ValueError, match="rate_limit"):
        ServerConfig(rate_limit="lots")
    assert ServerConfig(rate_limit="").rate_limit == ""
