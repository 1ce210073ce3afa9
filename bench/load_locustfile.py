"""The request mix of bench/load.py (run by locust there; the stage comes in LOAD_* variables)."""

from __future__ import annotations

import json
import os
import random

from locust import HttpUser, constant_throughput, task

URLS = json.loads(os.environ["LOAD_URLS"])
TOKENS = json.loads(os.environ["LOAD_TOKENS"])
JOBS = json.loads(os.environ["LOAD_JOBS"])
RATE = float(os.environ["LOAD_PER_USER_RATE"])
HELD = {"script": "#!/bin/bash\n#SBATCH -t 1 -c 1 -H\ntrue\n", "args": []}


class Person(HttpUser):
    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        self.who = random.randrange(len(TOKENS))
        self.client.headers["Authorization"] = f"Bearer {TOKENS[self.who]}"

    def _url(self, path: str) -> str:
        return random.choice(URLS) + path  # either replica, as a load balancer would

    @task(40)
    def job_list(self) -> None:
        self.client.get(self._url("/jobs?limit=50"), name="GET /jobs")

    @task(25)
    def job_page(self) -> None:
        self.client.get(self._url(f"/jobs/{random.choice(JOBS[self.who])}"), name="GET /jobs/{id}")

    @task(10)
    def submit(self) -> None:
        self.client.post(self._url("/jobs"), json=HELD, name="POST /jobs")

    @task(10)
    def estimate(self) -> None:
        self.client.post(self._url("/jobs/estimate"), json=HELD, name="POST /jobs/estimate")

    @task(15)
    def balance(self) -> None:
        self.client.get(self._url("/accounts/me"), name="GET /accounts/me")
