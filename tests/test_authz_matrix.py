"""The authorization matrix: every route in the OpenAPI document × every role × own/other tenant.

EXPECTED is the one place that says what each role gets on each route, on an object of its own
tenant and of another tenant. A route without a row fails the test (add its row when adding a
route). REQUESTS says how each route is called: a concrete URL and body, with {placeholders} for the
tenant's objects (see _ids). Without a token every route but /health and the agents' samples is 401,
and a read-only token gets 403 on every route that is not a GET (issue 13, item 10).
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from computenet import catalog
from computenet.api.app import create_app
from computenet.services.billing import invoices, repricing
from computenet.services.tenancy import accounts, grants, tenants, tokens
from computenet.services.apps import apps
from computenet.services import audit
from computenet.services.integration import notifications
from computenet.services.files import workspaces
from computenet.services.platform import Platform
from computenet.store.models import ClosedPeriod, InteractiveSession, Upload, User

from conftest import TABLES_IN_DELETE_ORDER, local_cluster, make_settings

ROLES = ("operator", "finance", "tenant_admin", "pi", "member", "user", "vendor")
TENANTS = ("own", "other")  # the caller's tenant (A) or another (B); staff and vendors belong to none
UNAUTHENTICATED_OK = {("GET", "/health"): 200, ("GET", "/problems/{code}"): 200, ("POST", "/monitoring/samples"): 400,
                      ("POST", "/auth/login"): 422, ("POST", "/auth/token"): 401, ("POST", "/auth/password"): 422,
                      ("POST", "/auth/password/forgot"): 202, ("POST", "/auth/password/reset"): 400,
                      ("POST", "/auth/email/confirm"): 400, ("GET", "/auth/methods"): 200}
# OIDC sign-in is for people without a token yet (no provider is configured here: a name is unknown)
UNAUTHENTICATED_OK |= {("GET", "/auth/oidc"): 200, ("GET", "/auth/oidc/{name}/start"): 404,
                       ("GET", "/auth/oidc/{name}/callback"): 404}
DATA = b"matrix"
TENANT_APP = (Path(catalog.__file__).parent / "builtin" / "generic-shell.yaml").read_text()  # as each tenant's own
SHA = hashlib.sha256(DATA).hexdigest()

# (method, path) -> how it is called: URL with {placeholders}, JSON body (None: none), what to make fresh first
REQUESTS: dict[tuple[str, str], tuple[str, object, str]] = {
    ("GET", "/health"): ("/health", None, ""),
    ("GET", "/problems/{code}"): ("/problems/not_found", None, ""),
    ("POST", "/jobs"): ("/jobs", {"script": "#!/bin/bash\ntrue\n", "args": ["-A", "{acct}", "-t", "1"]}, ""),
    ("POST", "/jobs:batch"): ("/jobs:batch", {"jobs": [{"script": "#!/bin/bash\ntrue\n",
                                                         "args": ["-A", "{acct}", "-t", "1"]}]}, ""),
    ("GET", "/jobs"): ("/jobs", None, ""),
    ("GET", "/jobs/{job_id}"): ("/jobs/{job}", None, ""),
    ("POST", "/jobs/{job_id}/cancel"): ("/jobs/{job}/cancel", None, ""),
    ("POST", "/jobs/{job_id}/hold"): ("/jobs/{job}/hold", None, ""),
    ("POST", "/jobs/{job_id}/release"): ("/jobs/{job}/release", None, ""),
    ("POST", "/jobs/{job_id}/update"): ("/jobs/{job}/update", {"name": "renamed"}, ""),
    ("POST", "/jobs/{job_id}/requeue"): ("/jobs/{job}/requeue", None, ""),
    ("GET", "/jobs/{job_id}/output"): ("/jobs/{job}/output", None, ""),
    ("GET", "/jobs/{job_id}/stats"): ("/jobs/{job}/stats", None, ""),
    ("GET", "/jobs/{job_id}/stats.png"): ("/jobs/{job}/stats.png", None, ""),
    ("POST", "/jobs/estimate"): ("/jobs/estimate", {"script": "#!/bin/bash\ntrue\n", "args": ["-A", "{acct}"]}, ""),
    ("GET", "/clusters"): ("/clusters", None, ""),
    ("GET", "/accounts/me"): ("/accounts/me", None, ""),
    ("GET", "/usage"): ("/usage", None, ""),
    ("GET", "/accounts/{name}/statements/{month}"): ("/accounts/{acct}/statements/2026-11", None, ""),
    ("POST", "/accounts/{name}/invoices/{month}"): ("/accounts/{acct}/invoices/2026-10", None, "invoice"),
    ("GET", "/accounts/{name}/invoices/{month}"): ("/accounts/{acct}/invoices/2026-10", None, "invoice"),
    ("GET", "/notifications"): ("/notifications", None, ""),
    ("GET", "/notifications/preferences"): ("/notifications/preferences", None, ""),
    ("PUT", "/notifications/preferences"): ("/notifications/preferences", {"job_ended": "app"}, ""),
    ("POST", "/notifications/{notification_id}/read"): ("/notifications/{notice}/read", None, ""),
    ("POST", "/accounts/{name}/topups"): ("/accounts/{acct}/topups", {"amount": "0.01", "reference": "{unique}"}, ""),
    ("PUT", "/accounts/{name}/credit-limit"): ("/accounts/{acct}/credit-limit", {"amount": "0"}, ""),
    ("PUT", "/accounts/{name}/low-balance"): ("/accounts/{acct}/low-balance", {"amount": "1.00"}, ""),
    ("PUT", "/accounts/{name}/budget"): ("/accounts/{acct}/budget", {"amount": None}, ""),
    ("PUT", "/accounts/{name}/storage-quota"): ("/accounts/{acct}/storage-quota", {"amount": None}, ""),
    ("PUT", "/accounts/{name}/exhaustion-policy"): ("/accounts/{acct}/exhaustion-policy", {"policy": "hold"}, ""),
    ("PUT", "/accounts/{name}/webhook"): ("/accounts/{acct}/webhook", {"url": None}, ""),
    ("GET", "/accounts/{name}/webhooks"): ("/accounts/{acct}/webhooks", None, ""),
    ("POST", "/accounts/{name}/webhooks"): ("/accounts/{acct}/webhooks",
                                            {"url": "https://93.184.215.14/matrix", "event_types": ["job.*"]}, ""),
    ("DELETE", "/accounts/{name}/webhooks/{endpoint_id}"): ("/accounts/{acct}/webhooks/999999", None, ""),
    ("POST", "/accounts/{name}/webhooks/{endpoint_id}/test"): ("/accounts/{acct}/webhooks/999999/test", None, ""),
    ("GET", "/accounts/{name}/webhooks/deliveries"): ("/accounts/{acct}/webhooks/deliveries", None, ""),
    ("GET", "/tenants/{tenant}/webhooks"): ("/tenants/{wallet}/webhooks", None, ""),
    ("POST", "/tenants/{tenant}/webhooks"): ("/tenants/{wallet}/webhooks",
                                             {"url": "https://93.184.215.14/matrix", "event_types": ["job.*"]}, ""),
    ("DELETE", "/tenants/{tenant}/webhooks/{endpoint_id}"): ("/tenants/{wallet}/webhooks/999999", None, ""),
    ("POST", "/tenants/{tenant}/webhooks/{endpoint_id}/test"): ("/tenants/{wallet}/webhooks/999999/test", None, ""),
    ("GET", "/tenants/{tenant}/webhooks/deliveries"): ("/tenants/{wallet}/webhooks/deliveries", None, ""),
    ("PUT", "/accounts/{name}/members/{user_name}"): ("/accounts/{acct}/members/{guest}", {"role": "member"}, ""),
    ("DELETE", "/accounts/{name}/members/{user_name}"): ("/accounts/{acct}/members/{guest}", None, "guest"),
    ("POST", "/accounts/{name}/moves"): ("/accounts/{wallet}/moves",
                                         {"to": "{acct}", "amount": "0.01", "reference": "{unique}"}, ""),
    ("POST", "/admin/reprice"): ("/admin/reprice", {"job_ids": ["{job}"], "reason": "matrix", "batch": "{unique}"},
                                 ""),
    ("POST", "/admin/months/{month}/close"): ("/admin/months/{month}/close", None, ""),
    ("GET", "/admin/reconcile"): ("/admin/reconcile", None, ""),
    ("POST", "/admin/reconcile/{job_id}"): ("/admin/reconcile/{job}", {"action": "release"}, ""),
    ("GET", "/admin/audit"): ("/admin/audit?limit=1", None, ""),
    ("GET", "/admin/clusters"): ("/admin/clusters", None, ""),
    ("POST", "/admin/clusters"): ("/admin/clusters", {}, ""),
    ("PATCH", "/admin/clusters/{name}"): ("/admin/clusters/no-such-cluster", {}, ""),
    ("DELETE", "/admin/clusters/{name}"): ("/admin/clusters/no-such-cluster", None, ""),
    ("GET", "/files"): ("/files?path=@{acct}/", None, ""),
    ("DELETE", "/files"): ("/files?path=@{acct}/f.txt", None, "file"),
    ("GET", "/files/quota"): ("/files/quota", None, ""),
    ("GET", "/files/content"): ("/files/content?path=@{acct}/f.txt", None, "file"),
    ("PUT", "/files/content"): ("/files/content?path=@{acct}/put.txt&overwrite=true", None, ""),
    ("POST", "/files/mkdir"): ("/files/mkdir", {"path": "@{acct}/{unique}"}, ""),
    ("POST", "/files/move"): ("/files/move", {"src": "@{acct}/f.txt", "dst": "@{acct}/moved.txt",
                                              "overwrite": True}, "file"),
    ("POST", "/uploads"): ("/uploads", {"path": "@{acct}/{unique}.bin", "size": len(DATA), "sha256": SHA}, ""),
    ("GET", "/uploads/{upload_id}"): ("/uploads/{upload}", None, "upload"),
    ("DELETE", "/uploads/{upload_id}"): ("/uploads/{upload}", None, "upload"),
    ("PUT", "/uploads/{upload_id}/chunks/{index}"): ("/uploads/{upload}/chunks/0", None, "upload"),
    ("POST", "/uploads/{upload_id}/complete"): ("/uploads/{upload}/complete", None, "upload"),
    ("GET", "/apps"): ("/apps", None, ""),
    ("POST", "/apps"): ("/apps", {"source": "not: [an app", "scope": "tenant"}, ""),
    ("GET", "/apps/{name}"): ("/apps/{app}", None, ""),
    ("POST", "/apps/{name}/versions/{version}/review"): ("/apps/no-such-app/versions/1.0/review",
                                                         {"approve": True}, ""),
    ("POST", "/apps/{name}/runs"): ("/apps/{app}/runs", {"params": {"script": "@{acct}/f.txt"}, "account": "{acct}",
                                                        "dry_run": True}, "file"),
    ("GET", "/efficiency"): ("/efficiency?project={acct}", None, ""),
    ("POST", "/monitoring/samples"): ("/monitoring/samples", {}, ""),
    ("GET", "/metrics"): ("/metrics", None, ""),
    ("GET", "/reports/{name}"): ("/reports/revenue?from=2026-01-01&to=2026-01-31", None, ""),
    ("GET", "/reports/{name}/chart.png"): ("/reports/no-such-chart/chart.png?from=2026-01-01&to=2026-01-31", None,
                                           ""),
    ("GET", "/tokens"): ("/tokens", None, ""),
    ("POST", "/tokens"): ("/tokens", {"name": "matrix", "expires_in_days": 1}, ""),
    ("DELETE", "/tokens/{token_id}"): ("/tokens/{token}", None, "token"),
    ("GET", "/admin/tokens"): ("/admin/tokens", None, ""),
    ("DELETE", "/admin/tokens/{token_id}"): ("/admin/tokens/{token}", None, "token"),
    ("GET", "/admin/users"): ("/admin/users", None, ""),
    ("POST", "/admin/users"): ("/admin/users", {"name": "n{unique}", "tenant": "{wallet}"}, ""),
    ("GET", "/admin/users/{name}"): ("/admin/users/{guest}", None, ""),
    ("PATCH", "/admin/users/{name}"): ("/admin/users/{guest}", {"display_name": "Guest"}, ""),
    ("POST", "/admin/users/{name}/suspend"): ("/admin/users/{person}/suspend", {"reason": "matrix"}, "person"),
    ("POST", "/admin/users/{name}/reinstate"): ("/admin/users/{person}/reinstate", {"reason": "matrix"},
                                                "suspended person"),
    ("POST", "/admin/users/{name}/delete"): ("/admin/users/{person}/delete", {"reason": "matrix"}, "person"),
    ("POST", "/admin/users/{name}/roles"): ("/admin/users/{person}/roles",
                                            {"role": "tenant_admin", "reason": "matrix"}, "person"),
    ("DELETE", "/admin/users/{name}/roles/{role}"): ("/admin/users/{person}/roles/tenant_admin?reason=matrix", None,
                                                     "admin person"),
    ("GET", "/sessions"): ("/sessions", None, ""),
    ("POST", "/sessions"): ("/sessions", {"app": "jupyterlab", "account": "{acct}"}, ""),
    ("GET", "/sessions/{session_id}"): ("/sessions/{session}", None, ""),
    ("PATCH", "/sessions/{session_id}"): ("/sessions/{session}", {"extend_minutes": 30}, ""),
    ("DELETE", "/sessions/{session_id}"): ("/sessions/{session}", None, ""),
    ("POST", "/sessions/{session_id}/ticket"): ("/sessions/{session}/ticket", None, ""),
    ("POST", "/auth/login"): ("/auth/login", {"login": "", "password": "x"}, ""),
    ("POST", "/auth/token"): ("/auth/token", {"grant_type": "refresh_token", "refresh_token": "cnr_matrix"}, ""),
    ("GET", "/auth/session"): ("/auth/session", None, ""),
    ("GET", "/auth/sessions"): ("/auth/sessions", None, ""),
    ("DELETE", "/auth/sessions/{session_id}"): ("/auth/sessions/999999", None, ""),
    ("POST", "/auth/logout"): ("/auth/logout", None, ""),
    ("POST", "/auth/logout-everywhere"): ("/auth/logout-everywhere", None, ""),
    ("POST", "/auth/password"): ("/auth/password", {"login": "", "current_password": "x", "new_password": "y"}, ""),
    ("POST", "/auth/password/forgot"): ("/auth/password/forgot", {"login": "nobody"}, ""),
    ("POST", "/auth/password/reset"): ("/auth/password/reset", {"token": "matrix", "new_password": "x"}, ""),
    ("POST", "/auth/email/verify"): ("/auth/email/verify", None, ""),
    ("POST", "/auth/email/confirm"): ("/auth/email/confirm", {"token": "matrix"}, ""),
    ("GET", "/auth/methods"): ("/auth/methods", None, ""),
    ("POST", "/admin/users/{name}/password"): ("/admin/users/{person}/password", {"how": "temporary"}, "person"),
    ("POST", "/admin/users/{name}/unlock"): ("/admin/users/{person}/unlock", None, "person"),
    ("GET", "/auth/oidc"): ("/auth/oidc", None, ""),
    ("GET", "/auth/oidc/{name}/start"): ("/auth/oidc/nosuch/start?next=/", None, ""),
    ("GET", "/auth/oidc/{name}/callback"): ("/auth/oidc/nosuch/callback?state=x&code=y", None, ""),
}

# What each role gets, own tenant/other tenant, in the order of ROLES:
#            operator finance  t.admin  pi       member   user     vendor
EXPECTED: dict[tuple[str, str], str] = {
    ('GET', '/problems/{code}'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/health'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('POST', '/jobs'): "400/400 400/400 400/400 202/400 202/400 400/400 400/400",
    # each job of a batch is accepted or refused on its own (its own status inside the 200)
    ('POST', '/jobs:batch'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/jobs'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    # a job is its owner's (and an is_admin user's): not its PI's, not an operator role's
    ('GET', '/jobs/{job_id}'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('POST', '/jobs/{job_id}/cancel'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('POST', '/jobs/{job_id}/hold'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('POST', '/jobs/{job_id}/release'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    # the owner passes the check and meets the job's own state: the matrix's job has ended (409)
    ('POST', '/jobs/{job_id}/update'): "404/404 404/404 404/404 404/404 409/404 404/404 404/404",
    # the same: an ended job is not requeued (409 for its owner)
    ('POST', '/jobs/{job_id}/requeue'): "404/404 404/404 404/404 404/404 409/404 404/404 404/404",
    ('GET', '/jobs/{job_id}/output'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('GET', '/jobs/{job_id}/stats'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('GET', '/jobs/{job_id}/stats.png'): "404/404 404/404 404/404 404/404 404/404 404/404 404/404",
    ('POST', '/jobs/estimate'): "400/400 400/400 400/400 200/400 200/400 400/400 400/400",
    ('GET', '/clusters'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    # an interactive session is its owner's alone (the member's here; it has ended, so no extend);
    # JupyterLab is on no cluster of this network (none has the tag)
    ('GET', '/sessions'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('POST', '/sessions'): "400/400 400/400 400/400 400/400 400/400 400/400 400/400",
    ('GET', '/sessions/{session_id}'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('PATCH', '/sessions/{session_id}'): "404/404 404/404 404/404 404/404 409/404 404/404 404/404",
    ('DELETE', '/sessions/{session_id}'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    # a way in to the session (its own origin): the owner's alone, and not to one that has ended
    ('POST', '/sessions/{session_id}/ticket'): "404/404 404/404 404/404 404/404 409/404 404/404 404/404",
    ('GET', '/accounts/me'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/usage'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/accounts/{name}/statements/{month}'): "200/200 200/200 200/404 200/404 200/404 404/404 404/404",
    # whoever may read an account's statement may have its invoice (issuing again returns the same one)
    ('POST', '/accounts/{name}/invoices/{month}'): "200/200 200/200 200/404 200/404 200/404 404/404 404/404",
    ('GET', '/accounts/{name}/invoices/{month}'): "200/200 200/200 200/404 200/404 200/404 404/404 404/404",
    ('GET', '/notifications'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/notifications/preferences'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('PUT', '/notifications/preferences'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('POST', '/notifications/{notification_id}/read'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('POST', '/accounts/{name}/topups'): "201/201 201/201 403/404 403/404 403/404 404/404 404/404",
    ('PUT', '/accounts/{name}/credit-limit'): "200/200 200/200 403/404 403/404 403/404 404/404 404/404",
    ('PUT', '/accounts/{name}/low-balance'): "200/200 200/200 200/404 200/404 403/404 404/404 404/404",
    ('PUT', '/accounts/{name}/budget'): "200/200 200/200 200/404 200/404 403/404 404/404 404/404",
    ('PUT', '/accounts/{name}/storage-quota'): "200/200 200/200 403/404 403/404 403/404 404/404 404/404",
    ('PUT', '/accounts/{name}/exhaustion-policy'): "200/200 200/200 403/404 403/404 403/404 404/404 404/404",
    ('PUT', '/accounts/{name}/webhook'): "200/200 200/200 200/404 200/404 403/404 404/404 404/404",
    # webhook endpoints: the same managers (an endpoint of no account answers as missing)
    ('GET', '/accounts/{name}/webhooks'): "200/200 200/200 200/404 200/404 403/404 404/404 404/404",
    ('POST', '/accounts/{name}/webhooks'): "201/201 201/201 201/404 201/404 403/404 404/404 404/404",
    ('DELETE', '/accounts/{name}/webhooks/{endpoint_id}'): "404/404 404/404 404/404 404/404 403/404 404/404 404/404",
    ('POST', '/accounts/{name}/webhooks/{endpoint_id}/test'):
        "404/404 404/404 404/404 404/404 403/404 404/404 404/404",
    ('GET', '/accounts/{name}/webhooks/deliveries'): "200/200 200/200 200/404 200/404 403/404 404/404 404/404",
    # a tenant's endpoints: its admins and operators; to anyone else the tenant is missing
    ('GET', '/tenants/{tenant}/webhooks'): "200/200 404/404 200/404 404/404 404/404 404/404 404/404",
    ('POST', '/tenants/{tenant}/webhooks'): "201/201 404/404 201/404 404/404 404/404 404/404 404/404",
    ('DELETE', '/tenants/{tenant}/webhooks/{endpoint_id}'): "404/404 404/404 404/404 404/404 404/404 404/404 404/404",
    ('POST', '/tenants/{tenant}/webhooks/{endpoint_id}/test'):
        "404/404 404/404 404/404 404/404 404/404 404/404 404/404",
    ('GET', '/tenants/{tenant}/webhooks/deliveries'): "200/200 404/404 200/404 404/404 404/404 404/404 404/404",
    ('PUT', '/accounts/{name}/members/{user_name}'): "200/200 200/200 200/404 200/404 403/404 404/404 404/404",
    ('DELETE', '/accounts/{name}/members/{user_name}'): "204/204 204/204 204/404 204/404 403/404 404/404 404/404",
    # from the tenant's wallet to the project: the tenant's admin, finance, operators
    ('POST', '/accounts/{name}/moves'): "201/201 201/201 201/404 404/404 404/404 404/404 404/404",
    ('POST', '/admin/reprice'): "400/400 400/400 403/403 403/403 403/403 403/403 403/403",
    ('POST', '/admin/months/{month}/close'): "201/201 201/201 403/403 403/403 403/403 403/403 403/403",
    ('GET', '/admin/reconcile'): "200/200 403/403 403/403 403/403 403/403 403/403 403/403",
    ('POST', '/admin/reconcile/{job_id}'): "409/409 403/403 403/403 403/403 403/403 403/403 403/403",
    ('GET', '/admin/audit'): "200/200 200/200 403/403 403/403 403/403 403/403 403/403",
    ('GET', '/admin/clusters'): "200/200 403/403 403/403 403/403 403/403 403/403 403/403",
    ('POST', '/admin/clusters'): "400/400 403/403 403/403 403/403 403/403 403/403 403/403",
    ('PATCH', '/admin/clusters/{name}'): "404/404 403/403 403/403 403/403 403/403 403/403 403/403",
    ('DELETE', '/admin/clusters/{name}'): "404/404 403/403 403/403 403/403 403/403 403/403 403/403",
    # a project's workspace: its members (and is_admin users), not staff roles
    ('GET', '/files'): "404/404 404/404 404/404 200/404 200/404 404/404 404/404",
    ('DELETE', '/files'): "404/404 404/404 404/404 200/404 200/404 404/404 404/404",
    ('GET', '/files/quota'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/files/content'): "404/404 404/404 404/404 200/404 200/404 404/404 404/404",
    ('PUT', '/files/content'): "404/404 404/404 404/404 201/404 201/404 404/404 404/404",
    ('POST', '/files/mkdir'): "404/404 404/404 404/404 201/404 201/404 404/404 404/404",
    ('POST', '/files/move'): "404/404 404/404 404/404 200/404 200/404 404/404 404/404",
    ('POST', '/uploads'): "404/404 404/404 404/404 201/404 201/404 404/404 404/404",
    ('GET', '/uploads/{upload_id}'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('DELETE', '/uploads/{upload_id}'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('PUT', '/uploads/{upload_id}/chunks/{index}'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('POST', '/uploads/{upload_id}/complete'): "404/404 404/404 404/404 404/404 400/404 404/404 404/404",
    ('GET', '/apps'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('POST', '/apps'): "403/403 403/403 400/400 403/403 403/403 403/403 403/403",
    # a tenant's own app: its tenant's users and operators see it
    ('GET', '/apps/{name}'): "200/200 404/404 200/404 200/404 200/404 200/404 404/404",
    ('POST', '/apps/{name}/versions/{version}/review'): "404/404 403/403 403/403 403/403 403/403 403/403 403/403",
    # a dry run of the tenant's app on the project, its script in the project's workspace
    ('POST', '/apps/{name}/runs'): "404/404 404/404 404/404 200/404 200/404 404/404 404/404",
    ('GET', '/efficiency'): "200/200 200/200 200/404 200/404 200/404 404/404 404/404",
    ('POST', '/monitoring/samples'): "400/400 400/400 400/400 400/400 400/400 400/400 400/400",
    ('GET', '/metrics'): "200/200 403/403 403/403 403/403 403/403 403/403 403/403",
    ('GET', '/reports/{name}'): "200/200 200/200 403/403 403/403 403/403 403/403 403/403",
    ('GET', '/reports/{name}/chart.png'): "400/400 400/400 403/403 403/403 403/403 403/403 403/403",
    ('GET', '/tokens'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('POST', '/tokens'): "201/201 201/201 201/201 201/201 201/201 201/201 201/201",
    ('DELETE', '/tokens/{token_id}'): "404/404 404/404 404/404 404/404 200/404 404/404 404/404",
    ('GET', '/admin/tokens'): "200/200 403/403 403/403 403/403 403/403 403/403 403/403",
    ('DELETE', '/admin/tokens/{token_id}'): "200/200 403/403 403/403 403/403 403/403 403/403 403/403",
    # people: operators all, a tenant admin their tenant's (another's as missing), finance only sees them
    ('GET', '/admin/users'): "200/200 200/200 200/200 403/403 403/403 403/403 403/403",
    ('POST', '/admin/users'): "201/201 403/403 201/404 403/403 403/403 403/403 403/403",
    ('GET', '/admin/users/{name}'): "200/200 200/200 200/404 403/403 403/403 403/403 403/403",
    ('PATCH', '/admin/users/{name}'): "200/200 403/403 200/404 403/403 403/403 403/403 403/403",
    ('POST', '/admin/users/{name}/suspend'): "200/200 403/403 200/404 403/403 403/403 403/403 403/403",
    ('POST', '/admin/users/{name}/reinstate'): "200/200 403/403 200/404 403/403 403/403 403/403 403/403",
    ('POST', '/admin/users/{name}/delete'): "200/200 403/403 200/404 403/403 403/403 403/403 403/403",
    # granting the tenant admin role of the person's tenant
    ('POST', '/admin/users/{name}/roles'): "201/201 403/403 201/404 403/403 403/403 403/403 403/403",
    ('DELETE', '/admin/users/{name}/roles/{role}'): "200/200 403/403 200/404 403/403 403/403 403/403 403/403",
    # OIDC sign-in: the same for everyone, token or not (no provider configured: an unknown name)
    # signing in needs no token: the same answer for everyone (the bodies here are refused)
    ('POST', '/auth/login'): "422/422 422/422 422/422 422/422 422/422 422/422 422/422",
    ('POST', '/auth/token'): "401/401 401/401 401/401 401/401 401/401 401/401 401/401",
    ('POST', '/auth/password'): "422/422 422/422 422/422 422/422 422/422 422/422 422/422",
    ('POST', '/auth/password/forgot'): "202/202 202/202 202/202 202/202 202/202 202/202 202/202",
    ('POST', '/auth/password/reset'): "400/400 400/400 400/400 400/400 400/400 400/400 400/400",
    ('POST', '/auth/email/confirm'): "400/400 400/400 400/400 400/400 400/400 400/400 400/400",
    ('GET', '/auth/methods'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    # one's own sign-ins (a token's caller has no browser session: nothing to end, no CSRF token)
    ('GET', '/auth/session'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/auth/sessions'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('DELETE', '/auth/sessions/{session_id}'): "404/404 404/404 404/404 404/404 404/404 404/404 404/404",
    ('POST', '/auth/logout'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('POST', '/auth/logout-everywhere'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('POST', '/auth/email/verify'): "409/409 409/409 409/409 409/409 409/409 409/409 409/409",
    ('POST', '/admin/users/{name}/password'): "200/200 403/403 200/404 403/403 403/403 403/403 403/403",
    ('POST', '/admin/users/{name}/unlock'): "200/200 403/403 200/404 403/403 403/403 403/403 403/403",
    ('GET', '/auth/oidc'): "200/200 200/200 200/200 200/200 200/200 200/200 200/200",
    ('GET', '/auth/oidc/{name}/start'): "404/404 404/404 404/404 404/404 404/404 404/404 404/404",
    ('GET', '/auth/oidc/{name}/callback'): "404/404 404/404 404/404 404/404 404/404 404/404 404/404",
}


def _cells():
    return list(itertools.product(ROLES, TENANTS))


class World:
    """Two tenants, each with a wallet, a project (its PI, a member, a guest), a tenant admin and a plain
    user with an account of their own; staff and a vendor outside both. Built once per module."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.client = TestClient(create_app(platform))
        self.unversioned = {p for p in self.client.app.openapi()["paths"] if not p.startswith("/v1/")}
        self.tokens: dict[str, str] = {}
        self.calls = 0
        self.ids: dict[str, dict[str, object]] = {}
        with platform.db.session() as session:
            for name, role in (("ops", "operator"), ("fin", "finance"), ("ven", "vendor")):
                user = accounts.create_user(session, name)
                user.role = role
                self.tokens[role] = accounts.issue_token(session, user, "matrix")
                if role == "operator":
                    self.read_only = accounts.issue_token(session, user, "matrix-read", scope="read")
            for tenant_key, prefix in (("own", "ta"), ("other", "tb")):
                tenant = tenants.create_tenant(session, prefix, "university")
                pi, member, guest, admin, plain = (accounts.create_user(session, f"{prefix}-{r}")
                                                   for r in ("pi", "member", "guest", "admin", "user"))
                for user in (pi, member, guest, admin, plain):
                    user.tenant_id = tenant.id
                admin.role = "tenant_admin"
                project = tenants.create_project(session, tenant, f"{prefix}-lab", pi)
                tenants.set_member(session, project, member)
                own_account = accounts.create_account(session, f"{prefix}-user-lab", owner=plain)
                own_account.tenant_id = tenant.id
                wallet = accounts.get_account(session, prefix)
                accounts.top_up(session, wallet, "100.00", key=f"matrix:{prefix}")
                tenants.move(session, wallet, project, "50.00", key=f"matrix:{prefix}:lab", actor="test")
                accounts.top_up(session, own_account, "10.00", key=f"matrix:{prefix}:user")
                if tenant_key == "own":
                    for role, user in (("tenant_admin", admin), ("pi", pi), ("member", member), ("user", plain)):
                        self.tokens[role] = accounts.issue_token(session, user, "matrix")
                member_token = accounts.issue_token(session, member, "matrix-member")
                app = apps.publish(session, admin, TENANT_APP.replace("generic-shell", f"{prefix}-tool", 1), "tenant")
                notifications.notify_members(session, project, "low_balance", "matrix", f"matrix:{prefix}")
                self.ids[tenant_key] = {"acct": project.name, "wallet": prefix, "guest": guest.name,
                                        "member_id": member.id, "member_token": member_token,
                                        "app": app.spec.name}
        for tenant_key, ids in self.ids.items():
            headers = {"Authorization": f"Bearer {ids['member_token']}"}
            job = self.client.post("/jobs?wait=native", headers=headers, json={"script": "#!/bin/bash\ntrue\n",
                                                                    "args": ["-t", "1", "-A", str(ids["acct"])]})
            assert job.status_code == 201, job.text
            ids["job"] = job.json()["id"]
            with self.platform.db.session() as session:
                row = InteractiveSession(owner_id=ids["member_id"], job_id=ids["job"], app="jupyterlab",
                                         app_version="4", kind="jupyterlab", probe="", state="ended",
                                         ended_reason="stopped", secret="matrix", detail="")
                session.add(row)
                session.flush()
                ids["session"] = row.id
            ids["notice"] = self.client.get("/notifications", headers=headers).json()[0]["id"]

    def fresh(self, tenant_key: str, what: str) -> dict[str, object]:
        """Objects a cell may use up (an upload, a token, a file, a membership), made anew for it."""
        ids = self.ids[tenant_key]
        with self.platform.db.session() as session:
            member = session.get(User, ids["member_id"])
            if what == "upload":
                for row in session.scalars(select(Upload).where(Upload.user_id == member.id,
                                                                Upload.completed_at.is_(None))):
                    workspaces.abort_upload(session, self.platform, member, row.id)  # 20 open at most
                return {"upload": workspaces.begin_upload(session, self.platform, member,
                                                          f"@{ids['acct']}/{uuid.uuid4().hex}.bin", len(DATA),
                                                          SHA)["id"]}
            if what == "token":
                return {"token": tokens.issue(session, member, "spare")[0].id}
            if what == "file":
                workspaces.write_small(session, self.platform, member, f"@{ids['acct']}/f.txt", DATA, True, None)
            if what.endswith("person"):  # someone of the tenant to suspend, delete, grant a role to
                person = accounts.create_user(session, f"{ids['wallet']}-p{uuid.uuid4().hex[:8]}")
                person.tenant_id = tenants.get_tenant(session, str(ids["wallet"])).id
                person.status = "suspended" if what == "suspended person" else "active"
                if what == "admin person":
                    grants.grant(session, None, audit.SYSTEM, person, "tenant_admin", "matrix")
                return {"person": person.name}
            if what == "invoice":  # a closed month and its issued invoice (issuing again is the same one)
                if session.scalar(select(ClosedPeriod).where(ClosedPeriod.month == "2026-10")) is None:
                    repricing.close_month(session, "2026-10", audit.SYSTEM)
                    session.flush()
                invoices.issue(session, accounts.get_account(session, str(ids["acct"])), "2026-10",
                               self.platform.settings, "matrix")
            if what == "guest":
                tenants.set_member(session, accounts.get_account(session, str(ids["acct"])),
                                   accounts.get_user(session, str(ids["guest"])))
        return {}

    def request(self, method: str, path: str, role: str | None, tenant_key: str, token: str | None = None):
        url, body, fresh = REQUESTS[(method, path)]
        self.calls += 1  # a month of its own for each close (a closed month stays closed)
        values = dict(self.ids[tenant_key]) | {"unique": uuid.uuid4().hex[:12],
                                                "month": f"{1900 + self.calls // 9}-0{self.calls % 9 + 1}"}
        if fresh:
            values |= self.fresh(tenant_key, fresh)
        fill = lambda v: (v.format(**values) if isinstance(v, str) else  # noqa: E731
                          [fill(x) for x in v] if isinstance(v, list) else
                          {k: fill(x) for k, x in v.items()} if isinstance(v, dict) else v)
        body = fill(body)
        if isinstance(body, dict) and body.get("job_ids"):
            body["job_ids"] = [int(j) for j in body["job_ids"]]
        headers = {}
        if token or role:
            headers["Authorization"] = f"Bearer {token or self.tokens[role]}"
        content = DATA if method == "PUT" and "/files/content" in url or "/chunks/" in url else None
        if "/chunks/" in url:
            headers["X-Chunk-SHA256"] = SHA
        where = "" if path in self.unversioned else "/v1"  # the OIDC sign-in flow is the browser's, unversioned
        if content is not None:
            return self.client.request(method, where + fill(url), headers=headers, content=content)
        return self.client.request(method, where + fill(url), headers=headers, json=body)


@pytest.fixture(scope="module")
def world(database, db_url, tmp_path_factory) -> World:
    with database.engine.begin() as conn:  # clean_db's work, once for the module
        conn.execute(text("UPDATE users SET default_account_id = NULL"))
        conn.execute(text("UPDATE jobs SET hold_id = NULL"))
        for table in TABLES_IN_DELETE_ORDER:
            conn.execute(text(f"DELETE FROM {table}"))
    settings = make_settings(tmp_path_factory.mktemp("matrix"), db_url, [local_cluster()])
    platform = Platform(settings, db=database)
    platform.start()
    return World(platform)


def _routes(app) -> list[tuple[str, str]]:
    """Every documented route, named without its /v1 (the table's keys; the requests go to /v1)."""
    return [(method.upper(), path.removeprefix("/v1")) for path, ops in app.openapi()["paths"].items()
            for method in ops]


def _observed(world: World, route: tuple[str, str]) -> str:
    codes = [world.request(*route, role, tenant_key).status_code for role, tenant_key in _cells()]
    return " ".join(f"{codes[i]}/{codes[i + 1]}" for i in range(0, len(codes), 2))


def test_every_route_has_a_rule_and_every_cell_answers_as_the_table_says(world):
    routes = _routes(world.client.app)
    missing = [r for r in routes if r not in EXPECTED or r not in REQUESTS]
    wrong = []
    for route in routes:
        if route in missing:
            continue
        got = _observed(world, route)
        if got.split() != EXPECTED[route].split():
            wrong.append(f"{route}: expected {EXPECTED[route]}\n{' ' * (len(str(route)) + 6)}got      {got}")
    stale = [r for r in EXPECTED if r not in routes]
    assert not missing, "routes without a rule in EXPECTED/REQUESTS (add them):\n" + "\n".join(
        f"    {r!r}: \"{_observed(world, r) if r in REQUESTS else '?'}\"," for r in missing)
    assert not wrong, "cells that answer otherwise than the table says:\n" + "\n".join(wrong)
    assert not stale, f"rules for routes that no longer exist: {stale}"


def test_without_a_token_every_route_is_401(world):
    for route in _routes(world.client.app):
        if route not in REQUESTS:
            continue  # the matrix test names it
        status = world.request(*route, None, "own").status_code
        assert status == UNAUTHENTICATED_OK.get(route, 401), (route, status)


def test_a_read_only_operator_token_is_refused_every_change(world):
    for route in _routes(world.client.app):
        if route not in REQUESTS or route[0] == "GET" or route in UNAUTHENTICATED_OK:
            continue
        answer = world.request(*route, None, "own", token=world.read_only)
        assert answer.status_code == 403 and "read-only" in answer.text, (route, answer.status_code)
