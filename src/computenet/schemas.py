"""Wire models shared by the API and the typed client."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from .domain.limits import MAX_SCRIPT_BYTES

# Bounds on what a request may carry, so that hostile input is a 422 naming the field and never
# an overflow deep in the store (issue 13): row ids fit the primary keys (INTEGER, 32 bits on
# PostgreSQL), offsets and sizes a signed 64-bit column, money and quotas their columns with room for sums.
MAX_ROW_ID = 2 ** 31 - 1
MAX_OFFSET = 2 ** 63 - 1
MAX_AMOUNT = Decimal(10) ** 11  # a hundred billion: no single top-up, limit or budget comes near it
MAX_QUOTA_GB = Decimal(10) ** 9  # an exabyte, in GB; its bytes still fit a BIGINT


def _bounded(limit: Decimal, unit: str):
    def check(value: str) -> str:
        try:
            number = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return value  # not a number at all: the service says so (400, "not an amount")
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite {unit}")
        if abs(number) >= limit:
            raise ValueError(f"{value!r} is out of range: an {unit} must be less than {limit:,} in magnitude")
        return value
    return check


# money on the wire is a decimal string: a JSON number would pass through a binary float on the way
Amount = Annotated[str, Field(max_length=64, examples=["100.00"]), AfterValidator(_bounded(MAX_AMOUNT, "amount"))]
Gigabytes = Annotated[str, Field(max_length=64, examples=["500"]),
                      AfterValidator(_bounded(MAX_QUOTA_GB, "amount of GB"))]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # one spelling per month: "+2026-01" or "2026-1" is not one


class RoutingIn(BaseModel):
    """Bounds on where the network may put the job (besides sbatch's own -M and -p)."""

    region: str | None = Field(None, max_length=32)
    max_price: str | None = Field(None, max_length=32, description='the most the job may cost, e.g. "12.50"')
    max_wait_minutes: float | None = Field(None, ge=0, le=10 ** 7, allow_inf_nan=False)
    policy: str | None = Field(None, max_length=32, description="earliest_start, cheapest, owned_first, "
                                                                "data_locality or weighted")
    data_at: list[str] = Field(default_factory=list, max_length=64, description="clusters holding the input")


class JobSubmit(BaseModel):
    script: str = Field(max_length=MAX_SCRIPT_BYTES, description="the batch script, as sbatch would read it")
    args: list[str] = Field(default_factory=list, max_length=256,
                            description="sbatch flags; after '--', the script's own arguments")
    script_name: str | None = Field(None, max_length=255)
    routing: RoutingIn = Field(default_factory=RoutingIn)
    inputs: list[str] = Field(default_factory=list, max_length=64,
                              description="workspace files (results/a.dat, @proj/in.lj) copied into the job's "
                                          "working directory before it starts, under their own names")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
                                        description="a retry with the same key returns the first job, "
                                                    "submitted once (printable ASCII, no spaces)")


class JobBatch(BaseModel):
    """POST /jobs:batch: many jobs in one request, each accepted (or refused) on its own."""

    jobs: list[JobSubmit] = Field(min_length=1, max_length=500)


class JobBatchItem(BaseModel):
    index: int
    id: int | None = None
    created: bool = False  # False with an id: an earlier request with the same key made it
    status: int | None = None  # a refused job: the HTTP status a single POST /jobs would have had
    detail: str | None = None  # and why


class JobBatchResult(BaseModel):
    accepted: int
    refused: int
    results: list[JobBatchItem]


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
    app: str | None = None  # "lammps 2Aug2023" for an application-centre run
    outputs: str | None = None  # pending | done | failed: fetching outputs back into the workspace
    nodes: int = 1  # as asked for (squeue %D)


class JobEventOut(BaseModel):
    from_state: str | None
    to_state: str
    detail: str
    at: datetime


class JobDetail(JobOut):
    script: str
    script_args: list[str]
    spec: dict
    events: list[JobEventOut]
    routing: dict | None = None  # the router's decision: every candidate with its score and reasons
    predicted_start: datetime | None = None
    reroutes: int = 0
    app_run: dict | None = None  # name, version, params, environment per cluster
    inputs: list[dict] = Field(default_factory=list)  # staged workspace files with their checksums
    output_files: list[dict] = Field(default_factory=list)  # fetched back: path, size, sha256, remote path
    mem_mb: int | None = None  # memory asked for, all nodes (None: the partition's default)
    max_rss_bytes: int | None = None  # peak resident memory seen (monitoring samples / sstat), if known
    elapsed_s: int | None = None  # from accounting where the scheduler has reported it
    node_list: str | None = None  # where it ran, as the scheduler wrote it (squeue %N), once seen placed


class OutputChunk(BaseModel):
    stream: str
    data: str
    offset: int
    next_offset: int
    exists: bool
    finished: bool


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
    retry_at: datetime | None = Field(None, description="out of service: when the network next tries it")
    region: str = ""
    site: str = ""
    ownership: str = "owned"
    tags: list[str] = Field(default_factory=list)


class LedgerEntryOut(BaseModel):
    id: int
    amount: Decimal = Field(description="as the account sees it: + money in, - money out")
    kind: str = Field(description="topup, hold, post (a settled job), void (a released hold), charge")
    pending: bool = False
    job_id: int | None
    memo: str
    created_at: datetime


class AccountOut(BaseModel):
    name: str
    currency: str
    balance: Decimal
    reserved: Decimal = Field(description="held for unsettled jobs")
    credit_limit: Decimal = Decimal("0")
    available: Decimal
    is_default: bool
    entries: list[LedgerEntryOut]


class MeOut(BaseModel):
    user: str
    accounts: list[AccountOut]


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


class AppRunIn(BaseModel):
    params: dict = Field(default_factory=dict, description="parameter name -> value (input files: workspace paths)")
    version: str | None = Field(None, max_length=32)
    account: str | None = Field(None, max_length=64)
    cluster: str | None = Field(None, max_length=64)
    partition: str | None = Field(None, max_length=64)
    routing: RoutingIn = Field(default_factory=RoutingIn)
    dry_run: bool = False
    local_inputs: dict[str, int] = Field(default_factory=dict, max_length=64,
                                         description="dry run only: input parameter -> size in bytes of a file the "
                                                     "client has not uploaded (the parameter's value is its name)")


class AppPublishIn(BaseModel):
    source: str = Field(max_length=512 * 1024, description="the app spec, YAML")
    scope: str = Field("platform", description="platform, tenant or vendor")


class AppReviewIn(BaseModel):
    approve: bool
    note: str = Field("", max_length=2000)


class UploadIn(BaseModel):
    path: str = Field(max_length=4096)
    size: int = Field(ge=0, le=MAX_OFFSET)
    sha256: str = Field(min_length=64, max_length=64)
    overwrite: bool = False


class PathIn(BaseModel):
    path: str = Field(max_length=4096)


class MoveIn(BaseModel):
    src: str = Field(max_length=4096)
    dst: str = Field(max_length=4096)
    overwrite: bool = False
