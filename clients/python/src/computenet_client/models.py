"""What the API answers, as typed models.

Routes that declare a response model on the server (jobs, clusters, accounts, usage, notifications) are
pydantic models here with the same names and fields; tests/test_sdk_models.py compares them with the
server's OpenAPI document so the two cannot drift. Routes that answer free-form JSON are TypedDicts:
plain dicts at run time, typed for a checker. Fields are only ever added to /v1, and a model ignores
fields it does not know, so an older client keeps working against a newer server.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, Field

# job states the scheduler will not change again (the server's domain.states.TERMINAL_STATES)
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                             "BOOT_FAIL", "DEADLINE", "PREEMPTED", "LOST"})


# -- requests -------------------------------------------------------------------------------------------
class RoutingIn(BaseModel):
    """Bounds on where the network may put the job (besides sbatch's own -M and -p)."""

    region: str | None = None
    max_price: str | None = None  # a decimal string, e.g. "12.50"
    max_wait_minutes: float | None = None
    policy: str | None = None  # earliest_start, cheapest, owned_first, data_locality or weighted
    data_at: list[str] = Field(default_factory=list)


class JobSubmit(BaseModel):
    script: str
    args: list[str] = Field(default_factory=list)
    script_name: str | None = None
    routing: RoutingIn = Field(default_factory=RoutingIn)
    inputs: list[str] = Field(default_factory=list)
    idempotency_key: str | None = None


# -- jobs -----------------------------------------------------------------------------------------------
class JobOut(BaseModel):
    id: int
    name: str
    state: str
    reason: str | None
    cluster: str
    partition: str
    native_id: str | None
    account: str
    owner: str
    cores: int
    gpus: int
    time_limit_minutes: int | None
    max_cost: Decimal
    submitted_at: datetime
    start_time: datetime | None
    end_time: datetime | None
    exit_code: int | None
    workdir: str
    stdout_path: str
    stderr_path: str
    settled: bool
    cost: Decimal | None = None
    needs_reconcile: bool = False
    app: str | None = None
    outputs: str | None = None
    nodes: int = 1

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class JobEventOut(BaseModel):
    from_state: str | None
    to_state: str
    detail: str
    at: datetime


class JobDetail(JobOut):
    script: str
    script_args: list[str]
    spec: dict[str, Any]
    events: list[JobEventOut]
    routing: dict[str, Any] | None = None
    predicted_start: datetime | None = None
    reroutes: int = 0
    app_run: dict[str, Any] | None = None
    inputs: list[dict[str, Any]] = Field(default_factory=list)
    output_files: list[dict[str, Any]] = Field(default_factory=list)
    mem_mb: int | None = None
    max_rss_bytes: int | None = None
    elapsed_s: int | None = None
    node_list: str | None = None


class JobBatchItem(BaseModel):
    index: int
    id: int | None = None
    created: bool = False
    status: int | None = None
    detail: str | None = None


class JobBatchResult(BaseModel):
    accepted: int
    refused: int
    results: list[JobBatchItem]


class OutputChunk(BaseModel):
    stream: str
    data: str
    offset: int
    next_offset: int
    exists: bool
    finished: bool


# -- clusters, accounts, usage, notifications -------------------------------------------------------------
class PartitionOut(BaseModel):
    name: str
    nodes: int
    cores_per_node: int
    mem_per_node_mb: int
    gpus_per_node: int
    gpu_type: str | None
    max_time_minutes: int | None
    default_time_minutes: int | None
    is_default: bool
    available: bool
    price_core_hour: Decimal | None
    price_gpu_hour: Decimal | None


class ClusterOut(BaseModel):
    name: str
    kind: str
    health: str
    health_detail: str
    checked_at: datetime | None
    partitions: list[PartitionOut]
    retry_at: datetime | None = None
    region: str = ""
    site: str = ""
    ownership: str = "owned"
    tags: list[str] = Field(default_factory=list)


class LedgerEntryOut(BaseModel):
    id: int
    amount: Decimal  # as the account sees it: + money in, - money out
    kind: str
    pending: bool = False
    job_id: int | None
    memo: str
    created_at: datetime


class AccountOut(BaseModel):
    name: str
    currency: str
    balance: Decimal
    reserved: Decimal
    credit_limit: Decimal = Decimal("0")
    available: Decimal
    is_default: bool
    entries: list[LedgerEntryOut]


class MeOut(BaseModel):
    user: str
    accounts: list[AccountOut]

    def account(self, name: str | None = None) -> AccountOut:
        """The named account, or the default one."""
        for acct in self.accounts:
            if (name is None and acct.is_default) or acct.name == name:
                return acct
        raise KeyError(name or "no default account")


class UsageRowOut(BaseModel):
    key: str
    jobs: int
    core_hours: Decimal
    gpu_hours: Decimal
    cost: Decimal


class NotificationOut(BaseModel):
    id: int
    kind: str
    message: str
    created_at: datetime
    read: bool


class PreferencesOut(BaseModel):
    job_ended: Literal["off", "app", "email"]
    email: str | None = None


# -- free-form answers (TypedDicts: dicts at run time) ------------------------------------------------------
JsonObject = dict[str, Any]


class EstimateCandidate(TypedDict, total=False):
    cluster: str
    partition: str
    ownership: str
    region: str
    feasible: bool
    reasons: list[str]
    time_limit_minutes: int | None
    price: str | None
    wait_s: float | None
    predicted_start: str | None
    has_data: bool
    score: float | None
    explanation: str


class Estimate(TypedDict, total=False):
    policy: str
    decided_at: str | None
    chosen: str | None  # "cluster/partition", or None when nothing can take the job
    candidates: list[EstimateCandidate]
    notes: list[str]


class FileEntry(TypedDict, total=False):
    name: str
    path: str
    kind: str  # file or dir
    size: int
    mtime: float
    sha256: str
    origin: str


class QuotaRow(TypedDict):
    workspace: str
    used_bytes: int
    quota_bytes: int | None
    used_percent: float | None


class UploadState(TypedDict):
    id: str
    path: str
    size: int
    sha256: str
    chunk_size: int
    chunks: int
    missing: list[int]
    complete: bool


class StoredFile(TypedDict):
    path: str
    size: int
    sha256: str


class Downloaded(TypedDict):
    path: str
    local: str
    size: int
    sha256: str
    verified: bool


class AppSummary(TypedDict, total=False):
    name: str
    version: str
    category: str
    title: str
    scope: str
    status: str
    publisher: str | None
    tenant: str | None
    runtime_hint_minutes: int | None
    # with detail (app()): description, parameters, resources, inputs, outputs, template, environments
    description: str
    parameters: list[JsonObject]
    resources: JsonObject
    inputs: list[str]
    outputs: list[str]
    template: str
    environments: list[JsonObject]
    review_note: str | None


class SessionOut(TypedDict, total=False):
    id: int
    app: str
    version: str
    kind: str
    state: str  # queued, starting, running, ended
    ready: bool
    url: str | None
    job_id: int | None
    cluster: str | None
    cores: int | None
    gpus: int | None
    time_limit_minutes: int | None
    time_left_s: int | None
    predicted_start: str | None
    cost_so_far: str
    max_cost: str | None
    created_at: str
    ready_at: str | None
    ended_at: str | None
    ended_reason: str | None
    detail: str


class WebhookEndpoint(TypedDict, total=False):
    id: int
    account: str | None  # None on a tenant-wide endpoint
    tenant: str | None  # set on a tenant-wide endpoint
    url: str
    event_types: list[str]
    description: str
    legacy: bool
    created_by: str | None
    created_at: str
    secret: str  # in add_webhook()'s answer only


class WebhookRemoved(TypedDict, total=False):
    account: str  # or tenant, for a tenant-wide endpoint
    tenant: str
    removed: int


class WebhookTestResult(TypedDict):
    endpoint: int
    event_id: str
    ok: bool
    status: int | None
    error: str | None


class WebhookDelivery(TypedDict, total=False):
    id: int
    endpoint: int
    url: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    created_at: str
    finished_at: str | None
