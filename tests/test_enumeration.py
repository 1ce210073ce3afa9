"""Enumeration: someone else's object and a missing one answer the same (status and words), on every
route that names an object, so no caller learns which names or ids exist (issue 13, item 8)."""

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from computenet.api.app import create_app
from computenet.services.tenancy import accounts, tenants
from computenet.services.integration import notifications
from computenet.store.models import Notification

MONTH = "2026-11"


def _world(platform) -> dict:
    """Tenant A with victor's project, a job, a notice, an upload and a token; mallory in tenant B."""
    with platform.db.session() as session:
        a, b = tenants.create_tenant(session, "tenant-a", "university"), tenants.create_tenant(session, "tenant-b",
                                                                                               "enterprise")
        victor, mallory = accounts.create_user(session, "victor"), accounts.create_user(session, "mallory")
        victor.tenant_id, mallory.tenant_id = a.id, b.id
        victim = tenants.create_project(session, a, "victim-lab", victor)
        own = tenants.create_project(session, b, "mallory-lab", mallory)
        mallory.role = "tenant_admin"  # the strongest tenant role, in the other tenant
        accounts.top_up(session, victim, "50.00", key="enum:victim")
        accounts.top_up(session, own, "50.00", key="enum:own")
        tokens = {u.name: accounts.issue_token(session, u, "t") for u in (victor, mallory)}
    client = TestClient(create_app(platform))
    as_victor = {"Authorization": f"Bearer {tokens['victor']}"}
    job = client.post("/jobs", headers=as_victor,
                      json={"script": "#!/bin/bash\ntrue\n", "args": ["-t", "1", "-A", "victim-lab"]})
    assert job.status_code == 202, job.text
    data = b"secret"
    upload = client.post("/uploads", headers=as_victor,
                         json={"path": "x.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    assert upload.status_code == 201, upload.text
    token_list = client.get("/tokens", headers=as_victor)
    assert token_list.status_code == 200, token_list.text
    with platform.db.session() as session:
        notifications.notify_members(session, accounts.get_account(session, "victim-lab"), "low_balance", "low",
                                     "enum:1")
        notice = session.scalar(select(Notification.id))
    return {"client": client, "mallory": {"Authorization": f"Bearer {tokens['mallory']}"},
            "job": job.json()["id"], "upload": upload.json()["id"], "notice": notice,
            "token": token_list.json()[0]["id"]}


def _probes(w) -> list[tuple[str, str, str, dict | None]]:
    """(method, URL with {} for the probed name or id, the existing one, a body)."""
    money = {"amount": "1.00"}
    return [
        ("GET", "/jobs/{}", w["job"], None), ("POST", "/jobs/{}/cancel", w["job"], None),
        ("GET", "/jobs/{}/output", w["job"], None), ("GET", "/jobs/{}/stats", w["job"], None),
        ("GET", "/jobs/{}/stats.png", w["job"], None),
        ("POST", "/notifications/{}/read", w["notice"], None),
        ("GET", "/uploads/{}", w["upload"], None), ("POST", "/uploads/{}/complete", w["upload"], None),
        ("DELETE", "/uploads/{}", w["upload"], None),
        ("GET", "/accounts/{}/statements/" + MONTH, "victim-lab", None),
        ("POST", "/accounts/{}/topups", "victim-lab", {"amount": "1.00", "reference": "r"}),
        ("PUT", "/accounts/{}/credit-limit", "victim-lab", money),
        ("PUT", "/accounts/{}/low-balance", "victim-lab", money),
        ("PUT", "/accounts/{}/budget", "victim-lab", money),
        ("PUT", "/accounts/{}/storage-quota", "victim-lab", money),
        ("PUT", "/accounts/{}/exhaustion-policy", "victim-lab", {"policy": "hold"}),
        ("PUT", "/accounts/{}/webhook", "victim-lab", {"url": None}),
        ("PUT", "/accounts/{}/members/mallory", "victim-lab", {}),
        ("DELETE", "/accounts/{}/members/victor", "victim-lab", None),
        ("POST", "/accounts/{}/moves", "victim-lab", {"to": "mallory-lab", "amount": "1.00", "reference": "m"}),
        ("POST", "/accounts/mallory-lab/moves?_={}", "victim-lab", None),  # the target: see below
        ("GET", "/files?path=@{}/", "victim-lab", None),
        ("GET", "/efficiency?project={}", "victim-lab", None),
        ("GET", "/efficiency?user={}", "victor", None),
        ("DELETE", "/tokens/{}", w["token"], None),
    ]


def test_someone_elses_and_missing_answer_the_same(platform):
    w = _world(platform)
    client, headers = w["client"], w["mallory"]
    missing_for = {int: 987_654, str: "no-such-thing"}
    differences = []
    for method, template, existing, body in _probes(w):
        missing = missing_for[type(existing)]
        if "moves?_=" in template:  # moving money to an account: the target named in the body
            answers = [client.post("/accounts/mallory-lab/moves", headers=headers,
                                   json={"to": str(name), "amount": "1.00", "reference": f"t{name}"})
                       for name in (existing, missing)]
        else:
            answers = [client.request(method, template.format(name), headers=headers, json=body)
                       for name in (existing, missing)]
        seen, unseen = ((r.status_code, r.json().get("detail", "").replace(str(n), "X"))
                        for r, n in zip(answers, (existing, missing)))
        if seen != unseen or seen[0] < 400:
            differences.append(f"{method} {template}: someone else's {seen} vs missing {unseen}")
    assert differences == [], "\n".join(differences)
