"""Shared test fixtures.

The database is SQLite unless COMPUTENET_TEST_DATABASE_URL names another
(CI runs the tests that use the database a second time on PostgreSQL). It is migrated once
per run; every test starts from empty tables.

Tests marked ``slurm`` use the real test bed (scripts/slurm-testbed start);
COMPUTENET_TESTBED names its base directory. Without it they skip, except
under CI=true, where a missing test bed is a failure.
"""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import ClusterConfig, Price, Settings
from computenet.services.tenancy import accounts
from computenet.services.platform import Platform
from computenet.store.db import Database

FIXTURES = Path(__file__).parent / "fixtures"
TABLES_IN_DELETE_ORDER = [
    "session_access", "webhook_deliveries", "webhook_endpoints", "outbox_events", "worker_runs", "worker_leases", "oidc_logins", "external_identities", "password_resets", "refresh_tokens", "web_sessions", "signin_attempts", "password_credentials",
    "interactive_sessions", "job_step_samples", "job_profiles", "job_samples", "file_records", "uploads", "apps", "registered_clusters", "role_grants", "unix_identities", "deliveries", "notifications", "charge_adjustments", "audit_events", "invoices", "closed_periods", "slurm_accounts",
    "charges", "transfers", "ledger_accounts", "usage_records", "job_events", "jobs", "api_tokens",
    "account_members", "users", "accounts", "contracts", "tenants", "price_items", "partitions", "clusters",
]


def _pg_schema_url(url: str) -> str:
    """Run PostgreSQL tests in their own schema, emptied at the start of the run
    (COMPUTENET_TEST_PG_SCHEMA lets two runs share one PostgreSQL)."""
    import sqlalchemy

    schema = os.environ.get("COMPUTENET_TEST_PG_SCHEMA", "cnet_test")
    if not schema.isidentifier():
        raise ValueError(f"COMPUTENET_TEST_PG_SCHEMA={schema!r} is not a plain identifier")
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


# A test that asks for none of these never touches the configured database: under PostgreSQL
# (CI's second pass) it would only repeat the SQLite pass, so it runs once
# (COMPUTENET_TEST_EVERY_TEST=1 runs everything again anyway).
DATABASE_FIXTURES = frozenset({"db_url", "database", "clean_db"})


def pytest_collection_modifyitems(config, items):
    url = os.environ.get("COMPUTENET_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql") or os.environ.get("COMPUTENET_TEST_EVERY_TEST") == "1":
        return
    keep, once = [], []
    for item in items:
        (keep if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) else once).append(item)
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = keep


@pytest.fixture(scope="session")
def db_url(tmp_path_factory) -> str:
    url = os.environ.get("COMPUTENET_TEST_DATABASE_URL")
    if url and url.startswith("postgresql"):
        return _pg_schema_url(url)
    return url or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def database(db_url) -> Database:
    db = Database(db_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def clean_db(database) -> Database:
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE users SET default_account_id = NULL"))
        conn.execute(text("UPDATE jobs SET hold_id = NULL"))
        for table in TABLES_IN_DELETE_ORDER:
            conn.execute(text(f"DELETE FROM {table}"))
    return database


def local_cluster(name: str = "local", slots: int = 4, **extra) -> ClusterConfig:
    return ClusterConfig(name=name, kind="local", slots=slots, mem_mb=8000, poll_interval_s=0.2,
                         prices={"*": Price(core_hour=Decimal("36.00"), gpu_hour=Decimal("90.00"))}, **extra)


def make_settings(data_dir: Path, db_url: str, clusters: list[ClusterConfig], **extra) -> Settings:
    # ignore the developer's own COMPUTENET_* variables
    return Settings(_env_prefix="COMPUTENET_TEST_IGNORED_", data_dir=data_dir, database_url=db_url,
                    clusters=clusters, **extra)


@pytest.fixture
def make_platform(tmp_path, clean_db, db_url):
    made: list[Platform] = []

    def build(clusters: list[ClusterConfig] | None = None, **extra) -> Platform:
        settings = make_settings(tmp_path / "data", db_url, clusters or [local_cluster()], **extra)
        platform = Platform(settings, db=clean_db)
        platform.start()
        made.append(platform)
        return platform

    yield build


@pytest.fixture
def platform(make_platform) -> Platform:
    return make_platform()


def add_user(platform: Platform, name: str, balance: str = "100.00", account: str | None = None) -> tuple[int, str]:
    """A user with a funded default account; returns (user id, API token)."""
    with platform.db.session() as session:
        user = accounts.create_user(session, name)
        acc = accounts.create_account(session, account or f"{name}-lab", owner=user)
        if Decimal(balance) > 0:
            accounts.top_up(session, acc, balance, key=f"test:{uuid.uuid4()}")
        return user.id, accounts.issue_token(session, user, "test")


@pytest.fixture
def server(platform):
    with EmbeddedServer(platform, run_services=False) as srv:
        yield srv


@pytest.fixture
def alice(platform, server) -> ComputeNetClient:
    _, token = add_user(platform, "alice")
    with ComputeNetClient(server.url, token) as client:
        yield client


@pytest.fixture
def bob(platform, server) -> ComputeNetClient:
    _, token = add_user(platform, "bob")
    with ComputeNetClient(server.url, token) as client:
        yield client


def port_to_keep(span: int = 2) -> int:
    """A port for a process a test kills and starts again on the same port: below the kernel's ephemeral
    range, so that while it is down no other process's port 0 (the other pass's servers and session
    listeners, outgoing connections) can take it. ``span`` ports from it are free (a server's sessions
    listener is its port + 1)."""
    import random
    import socket

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]) \
        if Path("/proc/sys/net/ipv4/ip_local_port_range").exists() else 32768
    for _ in range(200):
        first = random.randrange(max(1025, low - 12000), low - span)
        sockets = []
        try:
            for port in range(first, first + span):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port below the ephemeral range")


def run_async(coroutine):
    """Run a coroutine to its end in an event loop of its own, on a thread of its own, and return its result.

    Not asyncio.run() here: once a portal test has started the session's Playwright (its sync API keeps
    an event loop marked running on this thread), asyncio.run() on the main thread raises."""
    import asyncio
    import threading

    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="run_async")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def poll_until(check, timeout: float = 60.0, interval: float = 0.2, what: str = "condition", step=None):
    """Poll ``check`` (after ``step``, e.g. a poller pass) until truthy, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if step is not None:
            step()
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- the Slurm test bed ------------------------------------------------------

def _testbed_env() -> dict[str, str] | None:
    base = os.environ.get("COMPUTENET_TESTBED")
    if not base:
        return None
    env_file = Path(base) / "env.sh"
    if not env_file.exists():
        return None
    values = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            values[key] = value.strip().strip("'\"")
    return values


@pytest.fixture(scope="session")
def testbed() -> dict[str, str]:
    env = _testbed_env()
    if env is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Slurm test bed: run `scripts/slurm-testbed start` and export COMPUTENET_TESTBED")
        pytest.skip("no Slurm test bed (scripts/slurm-testbed start; export COMPUTENET_TESTBED=<base>)")
    return env


@pytest.fixture(autouse=True)
def testbed_to_itself(request):
    """One test at a time on the Slurm test bed, across processes: scripts/test runs the SQLite and
    PostgreSQL passes side by side, and some test-bed tests change it for everyone (kill a slurmctld,
    cap an account, expect idle nodes). Tests that do not use the test bed never wait for it."""
    base = os.environ.get("COMPUTENET_TESTBED")
    if "testbed" not in request.fixturenames or not base or not Path(base).is_dir():
        yield
        return
    import fcntl

    with open(Path(base) / ".tests.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def slurm_clusters(testbed: dict[str, str], poll: float = 0.5) -> list[ClusterConfig]:
    work = str(Path(os.environ["COMPUTENET_TESTBED"]) / "work")
    return [
        ClusterConfig(name="alpha", kind="slurm", slurm_conf=testbed["SLURM_CONF_ALPHA"], workdir_root=work,
                      poll_interval_s=poll,
                      prices={"cpu": Price(core_hour=Decimal("0.05")), "debug": Price(core_hour=Decimal("0.08"))}),
        ClusterConfig(name="beta", kind="slurm", slurm_conf=testbed["SLURM_CONF_BETA"], workdir_root=work,
                      poll_interval_s=poll,
                      prices={"cpu": Price(core_hour=Decimal("0.06")),
                              "gpu": Price(core_hour=Decimal("0.06"), gpu_hour=Decimal("8.00"))}),
    ]


# -- an SSH login node on loopback (for the SSH transport) ---------------------

@pytest.fixture(scope="session")
def ssh_login(tmp_path_factory):
    """An OpenSSH server on 127.0.0.1 that lets root in with a fresh key; yields its details."""
    import shutil
    import socket
    import subprocess

    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd) or os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no sshd (openssh-server) or not root: the SSH transport cannot be tested")
        pytest.skip("no sshd here (apt-get install openssh-server), or not root")
    base = tmp_path_factory.mktemp("sshd")
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / key)], check=True)
    # sshd reads authorized_keys as the user logging in: it must be readable by other logins too
    import tempfile

    keys_dir = Path(tempfile.mkdtemp(prefix="computenet-sshd-", dir="/tmp"))
    keys_dir.chmod(0o755)
    authorized = keys_dir / "authorized_keys"
    authorized.write_text((base / "client.pub").read_text())
    authorized.chmod(0o644)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host'}\nAuthorizedKeysFile {authorized}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPidFile {base / 'sshd.pid'}\n"
        "Subsystem sftp internal-sftp\n")  # staging files over SFTP
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {(base / 'host.pub').read_text().split(' ')[0]} "
                                      f"{(base / 'host.pub').read_text().split(' ')[1]}\n")
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(base / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=open(base / "sshd.log", "w"))
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {(base / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.1)
    yield {"host": "127.0.0.1", "port": port, "user": "root", "key": str(base / "client"),
           "known_hosts": str(base / "known_hosts"), "authorized_keys": str(authorized)}
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(keys_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def cheaper_argon2(request, monkeypatch):
    """Passwords are still argon2id in tests, at a lower cost (sign-ins are many and hashing is not what
    most tests are about); tests marked real_argon2 keep the production parameters."""
    if request.node.get_closest_marker("real_argon2"):
        return
    from argon2 import PasswordHasher

    from computenet.services.signin import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))


# -- a real browser (tests/browser.py): Debian's Chromium through Playwright --------

from browser import chromium  # noqa: E402,F401  (a session fixture, for every portal test)


# -- a real OpenLDAP directory (tests/ldap_server.py) ---------------------------

@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """A slapd on 127.0.0.1 serving tests/ldap_server.py's small directory (an ldap_server.Slapd)."""
    from ldap_server import slapd_fixture

    yield from slapd_fixture(tmp_path_factory)


def database_at(path, revision: str):
    """A SQLite database migrated only to ``revision``: rows written there as an older release
    would, then ``migrate()`` shows what a migration does to them."""
    from alembic import command

    from computenet.store.db import Database, alembic_config

    db = Database(f"sqlite:///{path / 'old.db'}")
    cfg = alembic_config(db.url)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    return db


def session_origin_client(srv, owner, session_id: int):
    """An HTTP client on the sessions' own origin with the session's cookie, as a browser gets it: a
    one-time ticket from the API (owner: the session owner's ComputeNetClient), no token works there."""
    import httpx

    entered = httpx.get(owner.session_connect_url(session_id), timeout=30)
    assert entered.status_code == 303, entered.text
    return httpx.Client(base_url=srv.origins.session_origin(session_id), timeout=30,
                        cookies={"cnet_access": entered.cookies["cnet_access"]})
