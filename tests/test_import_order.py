"""Each module can be the first one a process imports (the CLI imports lazily, so any of them may be):
a circular import between the store's model modules showed up only on some command paths."""

import subprocess
import sys

import pytest

FIRST = ["computenet.services.signin.passwords", "computenet.services.signin.attempts",
         "computenet.services.signin.web_sessions", "computenet.services.signin.login_tokens",
         "computenet.services.signin.oidc", "computenet.services.tenancy.grants", "computenet.api.routers.auth",
         "computenet.store.auth_models", "computenet.store.admin_models",
         "computenet.store.worker_models", "computenet.workers", "computenet.workers.status", "computenet.cli.workers"]


@pytest.mark.parametrize("module", FIRST)
def test_a_module_imports_first_in_a_fresh_process(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
