"""The chaos test (issue 19): two `cnet server --role api` and two `--role worker` processes on one
PostgreSQL and the Slurm test bed. Clients submit N jobs across both API replicas while a chaos
thread kill -9's a random process every few seconds and starts it again. Clients retry on a
connection error as real ones would (the same Idempotency-Key, and a look-up by the job's unique
name before submitting again). Afterwards:

- every acknowledged job (its client got an id) is on a cluster exactly once (sacct by the
  platform's tag, computenet:<id>, among this run's uniquely named jobs), and no job of this run
  is on a cluster without a row;
- every ended job is charged exactly once, and `cnet admin check-ledger` finds the ledger consistent;
- every webhook notice reached the receiver, each delivery id once, a repeat only where a worker was
  killed between the first receipt and the repeat (at least once, with an id to drop repeats by);
- no lease is held by a dead process past the bound: each killed worker's leases expire within
  lease_seconds of its death.

N is COMPUTENET_CHAOS_JOBS (default 40: a few minutes on a loaded 2-core machine, where a killed
`cnet server` takes seconds to serve again); COMPUTENET_CHAOS_EVERY_S is the time between kills
(default 4), an API replica and a worker in turn, each while its twin serves; COMPUTENET_CHAOS_SECONDS (default 120) how long the chaos lasts at least, the
submissions spread over it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from computenet.cli.embedded import free_port
from computenet.config import NotificationsConfig
from computenet.domain.sbatch import platform_tag
from computenet.domain.states import TERMINAL_STATES
from computenet.services.tenancy import accounts
from computenet.services.integration import webhooks
from computenet.store.models import Charge, Job, WorkerLease
from computenet.store.webhook_models import WebhookDelivery
from computenet.workers.leases import db_now

from conftest import port_to_keep

N_JOBS = int(os.environ.get("COMPUTENET_CHAOS_JOBS", "30"))
KILL_EVERY_S = float(os.environ.get("COMPUTENET_CHAOS_EVERY_S", "4"))
USERS = 6
CHAOS_S = float(os.environ.get("COMPUTENET_CHAOS_SECONDS", "90"))  # the submissions are spread over this
LEASE_S = 15.0
CLAIM_EVERY_S = 1.0
ENDED = {s.value for s in TERMINAL_STATES}

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not os.environ.get("COMPUTENET_TEST_DATABASE_URL", "").startswith("postgresql"),
                       reason="several processes share a database only on PostgreSQL"),
]


def cnet() -> str:
    return str(Path(sys.executable).parent / "cnet")


def write_config(path: Path, testbed: dict[str, str], receiver_port: int) -> None:
    work = str(Path(os.environ["COMPUTENET_TESTBED"]) / "work")
    path.write_text(
        "[notifications]\nwebhook_allow_private = true\ntimeout_s = 5\n"
        # a POST that fails under the kills (or a slow receiver on a loaded machine) is retried within
        # seconds, not after the production back-off of 30 s, 60 s...: the test waits for every delivery
        "[webhooks]\nbackoff_s = 1\nmax_backoff_s = 5\nmax_attempts = 100\n"
        f'[[clusters]]\nname = "alpha"\nkind = "slurm"\nslurm_conf = "{testbed["SLURM_CONF_ALPHA"]}"\n'
        f'workdir_root = "{work}"\npoll_interval_s = 1\n'
        'prices = { cpu = { core_hour = "0.05" }, debug = { core_hour = "0.08" } }\n'
        f'[[clusters]]\nname = "beta"\nkind = "slurm"\nslurm_conf = "{testbed["SLURM_CONF_BETA"]}"\n'
        f'workdir_root = "{work}"\npoll_interval_s = 1\n'
        'prices = { cpu = { core_hour = "0.06" }, gpu = { core_hour = "0.06", gpu_hour = "8.00" } }\n')


class Fleet:
    """The processes, by name (api1, api2, w1, w2), each on a port of its own, restartable."""

    def __init__(self, db_url: str, data: Path, config: Path, logs: Path) -> None:
        self.db_url, self.data, self.config, self.logs = db_url, data, config, logs
        # ports that stay theirs while they are down (an API's sessions listener is its port + 1)
        self.ports: dict[str, int] = {}
        for name in ("api1", "api2", "w1", "w2"):
            while (port := port_to_keep()) in self.ports.values() or port + 1 in self.ports.values() \
                    or port - 1 in self.ports.values():
                pass
            self.ports[name] = port
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.kills: list[tuple[str, int, float, datetime]] = []  # (name, pid, monotonic and UTC time)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
        env.update(COMPUTENET_DATABASE_URL=self.db_url, COMPUTENET_DATA_DIR=str(self.data),
                   COMPUTENET_CONFIG=str(self.config), COMPUTENET_WORKERS__LEASE_SECONDS=str(LEASE_S),
                   COMPUTENET_WORKERS__CLAIM_EVERY_S=str(CLAIM_EVERY_S))
        return env

    def start(self, name: str) -> None:
        role = "api" if name.startswith("api") else "worker"
        log = (self.logs / f"{name}.log").open("a")
        self.procs[name] = subprocess.Popen([cnet(), "server", "--role", role, "--port", str(self.ports[name])],
                                            env=self.env(), stdout=log, stderr=subprocess.STDOUT)

    def healthy(self, name: str) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports[name]}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, name: str) -> None:
        with self.lock:
            proc = self.procs[name]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            self.kills.append((name, proc.pid, time.monotonic(), datetime.now(timezone.utc)))
            self.start(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def tails(self, chars: int = 2500) -> str:
        """The end of each process's log, without slurmrestd's chatter."""
        out = ""
        for name in self.ports:
            path = self.logs / f"{name}.log"
            if path.exists():
                lines = [line for line in path.read_text(errors="replace").splitlines()
                         if not line.startswith("slurmrestd:")]
                out += f"\n--- {name}.log\n" + "\n".join(lines)[-chars:]
        return out

    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports[n]}" for n in ("api1", "api2")]


class Receiver:
    """Webhook endpoint: every receipt of every delivery id, with its monotonic time."""

    def __init__(self) -> None:
        self.receipts: list[tuple[str, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # today's header, or the Standard Webhooks one should the notices move to it
                ident = self.headers.get("webhook-id") or "?"  # the event id, on every delivery of it
                receiver.receipts.append((ident, time.monotonic()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def submit_with_retries(urls: list[str], token: str, name: str, deadline: float) -> int:
    """What a careful client does: on a connection error (the replica died mid-request) it asks the
    other replica whether the job is there (by its unique name) and submits again only if not."""
    script = f"#!/bin/bash\n#SBATCH -J {name}\n#SBATCH -c 1 -t 1\nsleep 1\n"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": name}
    attempt = 0
    while time.monotonic() < deadline:
        url = urls[attempt % len(urls)]
        attempt += 1
        try:
            if attempt > 1:
                found = httpx.get(f"{url}/jobs", params={"name": name, "limit": 5}, headers=headers, timeout=30)
                if found.status_code == 200 and found.json():
                    return found.json()[0]["id"]
                if found.status_code != 200:
                    time.sleep(0.5)
                    continue
            response = httpx.post(f"{url}/jobs", json={"script": script, "idempotency_key": name}, headers=headers,
                                  timeout=60)
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        if response.status_code in (200, 201, 202):
            return response.json()["id"]
        if response.status_code >= 500 or response.status_code == 503:
            time.sleep(0.5)
            continue
        raise AssertionError(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
    raise AssertionError(f"{name}: no acknowledgement before the deadline")


def sacct_by_tag(testbed: dict[str, str], prefix: str, since: str) -> dict[str, list[str]]:
    """{wckey: [cluster:jobid, ...]} of this run's jobs on both clusters (allocations only)."""
    found: dict[str, list[str]] = {}
    for cluster, conf in (("alpha", testbed["SLURM_CONF_ALPHA"]), ("beta", testbed["SLURM_CONF_BETA"])):
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-a", "-S", since, "--format=JobIDRaw,JobName,WCKey"],
                             env={**os.environ, "SLURM_CONF": conf}, capture_output=True, text=True, timeout=60,
                             check=True).stdout
        for line in out.splitlines():
            job_id, job_name, wckey = (line.split("|") + ["", ""])[:3]
            if job_name.startswith(prefix):
                found.setdefault(wckey, []).append(f"{cluster}:{job_id}")
    return found


def wait_until(check, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_chaos(clean_db, db_url, testbed, tmp_path):
    run = uuid.uuid4().hex[:6]
    prefix = f"chaos-{run}-"
    receiver = Receiver()
    config = tmp_path / "config.toml"
    write_config(config, testbed, receiver.port)
    tokens = []
    with clean_db.session() as session:
        for i in range(USERS):
            user = accounts.create_user(session, f"cx{run}u{i}")
            account = accounts.create_account(session, f"cx{run}a{i}", owner=user)
            accounts.top_up(session, account, "100.00", key=f"chaos:{run}:{i}")
            account.low_balance_threshold = Decimal("100.00")  # the first hold crosses it: one notice each
            webhooks.add_endpoint(session, account, f"http://127.0.0.1:{receiver.port}/hook", ["balance.*"],
                                  NotificationsConfig(webhook_allow_private=True), "chaos")
            tokens.append(accounts.issue_token(session, user, "chaos"))
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 5))
    fleet = Fleet(db_url, tmp_path / "data", config, tmp_path)
    stop_chaos = threading.Event()
    try:
        for name in fleet.ports:  # all at once on the empty database, as systemd would start them
            fleet.start(name)
        wait_until(lambda: all(fleet.healthy(n) for n in fleet.ports), 300, "every process up")  # a loaded machine imports slowly

        def chaos() -> None:
            rng = random.Random(run)
            kinds = [("api1", "api2"), ("w1", "w2")]  # an API replica, then a worker, and so on
            while not stop_chaos.wait(KILL_EVERY_S):
                # the victim's twin must be serving: one API replica and one worker are always up
                # (a restart takes long on a loaded machine; the others go on being killed meanwhile)
                pair = kinds[len(fleet.kills) % 2]
                victim = rng.choice(pair)
                twin = pair[1 - pair.index(victim)]
                while not stop_chaos.is_set() and not (fleet.healthy(twin) and fleet.healthy(victim)):
                    time.sleep(0.5)
                if not stop_chaos.is_set():
                    fleet.kill(victim)

        # the clients: jobs spread over the users and both replicas
        acked: dict[str, int] = {}
        errors: list[str] = []
        deadline = time.monotonic() + 300
        names = [f"{prefix}{i}" for i in range(N_JOBS)]

        def client(worker: int) -> None:
            for i in range(worker, N_JOBS, 4):
                urls = fleet.api_urls()[i % 2:] + fleet.api_urls()[:i % 2]
                try:
                    acked[names[i]] = submit_with_retries(urls, tokens[i % USERS], names[i], deadline)
                    time.sleep(CHAOS_S / (N_JOBS / 4))  # spread the submissions over several kills
                except AssertionError as exc:
                    errors.append(str(exc))

        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_from = time.monotonic()
        chaos_thread.start()
        clients = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(4)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(320)
        assert not errors, errors[:5]
        assert len(acked) == N_JOBS and len(set(acked.values())) == N_JOBS
        ids = set(acked.values())

        def all_settled():
            with clean_db.session() as session:
                rows = session.execute(select(Job.id, Job.state, Job.settled_at).where(Job.id.in_(ids))).all()
            return all(r.state in ENDED and r.settled_at is not None for r in rows) and rows

        # the chaos goes on while the workers poll, settle and deliver (and for CHAOS_S at least)
        rows = wait_until(all_settled, 300, "every acknowledged job ended and settled", every=2)
        assert {r.id for r in rows} == ids
        time.sleep(max(0.0, chaos_from + CHAOS_S - time.monotonic()))
        stop_chaos.set()
        chaos_thread.join(60)
        kills = list(fleet.kills)
        assert {k[0][0] for k in kills} == {"a", "w"}, f"the chaos thread killed {[k[0] for k in kills]}"

        # a killed worker's leases lapse within the bound of its death (renewed at the latest as it died),
        # and no dead process holds a live lease now (PostgreSQL runs on this host: one clock)
        with clean_db.session() as session:
            now = db_now(session)
            for name, pid, _, died in kills:
                if name.startswith("w"):
                    for lease in session.scalars(select(WorkerLease).where(WorkerLease.holder.like(f"%:{pid}:%"))):
                        assert lease.expires_at <= died + timedelta(seconds=LEASE_S + 1), (lease.task, pid)
                        assert lease.expires_at <= now or now - died < timedelta(seconds=LEASE_S + 1), lease.task

        wait_until(lambda: all(fleet.healthy(n) for n in fleet.ports), 300, "every process up again")
        # on a cluster exactly once; nothing of this run on a cluster without a row
        with clean_db.session() as session:
            all_rows = {j.id: j for j in session.scalars(select(Job).where(Job.name.like(f"{prefix}%")))}
            session.expunge_all()
        tags = sacct_by_tag(testbed, prefix, since)
        tag_of = {job_id: platform_tag(job_id, job.tag_nonce) for job_id, job in all_rows.items()}
        for job_id in ids:
            assert len(tags.get(tag_of[job_id], [])) == 1, (job_id, tags.get(tag_of[job_id]))
        for job_id, job in all_rows.items():  # unacknowledged rows (a replica died before answering)
            assert len(tags.get(tag_of[job_id], [])) <= 1, job_id
        assert set(tags) <= set(tag_of.values()), set(tags) - set(tag_of.values())

        # charged exactly once, and the ledger adds up
        with clean_db.session() as session:
            charges = dict(session.execute(select(Charge.job_id, func.count()).where(Charge.job_id.in_(ids))
                                           .group_by(Charge.job_id)).all())
        assert all(charges.get(i) == 1 for i in ids), {i: charges.get(i) for i in ids if charges.get(i) != 1}
        check = subprocess.run([cnet(), "admin", "check-ledger"], env=fleet.env(), capture_output=True, text=True,
                               timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr

        # each webhook delivered, each id once but where a worker died between two receipts of it
        def delivered():
            with clean_db.session() as session:
                hooks = session.execute(select(WebhookDelivery.event_id, WebhookDelivery.status)).all()
            return len(hooks) >= USERS and all(h.status == "delivered" for h in hooks) and hooks

        try:
            hooks = wait_until(delivered, 90, "every webhook delivered", every=2)
        except AssertionError as exc:  # what each delivery went through
            with clean_db.session() as session:
                rows = session.execute(select(WebhookDelivery.event_id, WebhookDelivery.status,
                                              WebhookDelivery.attempts, WebhookDelivery.last_error)).all()
            raise AssertionError(f"{exc}: {len(rows)} deliveries {[tuple(r) for r in rows]}; "
                                 f"{len(receiver.receipts)} receipts") from None
        got: dict[str, list[float]] = {}
        for ident, at in receiver.receipts:
            got.setdefault(ident, []).append(at)
        assert set(got) == {h.event_id for h in hooks}
        worker_deaths = [at for name, _, at, _ in kills if name.startswith("w")]
        for ident, times in got.items():
            for first, again in zip(times, times[1:]):
                assert any(first <= death <= again for death in worker_deaths), f"delivery {ident} repeated"
        print(f"chaos: {N_JOBS} jobs over {time.monotonic() - chaos_from:.0f} s, {len(kills)} kills ({sum(k[0].startswith('w') for k in kills)} workers), "
              f"{len(all_rows) - len(ids)} unacknowledged rows, {len(receiver.receipts) - len(got)} repeated webhooks")
    except AssertionError as exc:  # with what the processes said (tmp_path may be gone when one looks)
        raise AssertionError(f"{exc}{fleet.tails()}") from None
    finally:
        stop_chaos.set()
        with fleet.lock:  # not while the chaos thread starts one again
            fleet.stop()
        receiver.close()
