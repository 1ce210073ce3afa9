"""Tables. Money rows (ledger entries, charges) are insert-only."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..domain.sbatch import new_tag_nonce
from .types import FineMoney, Money, Rate, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # accounting is read from here (minus an overlap) on the next pass
    accounting_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime)
    region: Mapped[str] = mapped_column(String(32), default="", server_default="")
    site: Mapped[str] = mapped_column(String(64), default="", server_default="")
    ownership: Mapped[str] = mapped_column(String(8), default="owned", server_default="owned")
    cost_core_hour: Mapped[Decimal | None] = mapped_column(Rate)
    cost_gpu_hour: Mapped[Decimal | None] = mapped_column(Rate)
    # what owned capacity costs every hour, used or not (analytics/costs.py): one node's purchase
    # price written off over depreciation_years, its power (watts x PUE x price per kWh), other opex
    node_capex: Mapped[Decimal | None] = mapped_column(Money)
    depreciation_years: Mapped[Decimal | None] = mapped_column(Rate)
    node_watts: Mapped[int | None] = mapped_column(Integer)
    power_price_kwh: Mapped[Decimal | None] = mapped_column(Rate)
    pue: Mapped[Decimal | None] = mapped_column(Rate)
    node_opex_hour: Mapped[Decimal | None] = mapped_column(Rate)
    tags: Mapped[list | None] = mapped_column(JSON, default=list)
    # circuit breaker: consecutive submission failures, and until when it is kept out
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    breaker_open_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    partitions: Mapped[list["Partition"]] = relationship(back_populates="cluster", order_by="Partition.name")


class Partition(Base):
    __tablename__ = "partitions"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"))
    name: Mapped[str] = mapped_column(String(64))
    nodes: Mapped[int] = mapped_column(Integer)
    cores_per_node: Mapped[int] = mapped_column(Integer)
    mem_per_node_mb: Mapped[int] = mapped_column(BigInteger)
    gpus_per_node: Mapped[int] = mapped_column(Integer, default=0)
    gpu_type: Mapped[str | None] = mapped_column(String(64))
    max_time_minutes: Mapped[int | None] = mapped_column(Integer)
    default_time_minutes: Mapped[int | None] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    # None = no price configured: jobs are refused, never run for free
    price_core_hour: Mapped[Decimal | None] = mapped_column(Rate)
    price_gpu_hour: Mapped[Decimal | None] = mapped_column(Rate)
    product_line: Mapped[str] = mapped_column(String(32), default="hpc")
    billing_strategy: Mapped[str] = mapped_column(String(24), default="cores")
    node_names: Mapped[list | None] = mapped_column(JSON, default=list)  # partitions may share nodes
    features: Mapped[list | None] = mapped_column(JSON, default=list)  # on every node (for -C)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    cluster: Mapped[Cluster] = relationship(back_populates="partitions")


class PriceItem(Base):
    """One price, valid from ``effective_from`` until a newer item for the same key.

    Rows are never edited: a price change is a new row (a new version), so
    any past job can be re-rated at the price it ran under.
    """

    __tablename__ = "price_items"
    __table_args__ = (UniqueConstraint("cluster_id", "partition", "qos", "resource", "gpu_model", "effective_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), index=True)
    partition: Mapped[str] = mapped_column(String(64))  # "*" = every partition of the cluster
    qos: Mapped[str] = mapped_column(String(64), default="")  # "" = any QOS
    resource: Mapped[str] = mapped_column(String(16))  # core_hour | gpu_hour | mem_gb_hour
    gpu_model: Mapped[str] = mapped_column(String(64), default="")  # "" = any model
    unit_price: Mapped[Decimal] = mapped_column(Rate)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    actor: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    # the superuser made by `cnet admin user-add --admin`: the operator role, and sees every job and workspace
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # an older, single role (user | tenant_admin | finance | operator | vendor): still honoured as one
    # more grant by services/tenancy/roles.py (tenant_admin for the user's own tenant); new roles are RoleGrant rows
    role: Mapped[str] = mapped_column(String(16), default="user")
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    default_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", use_alter=True))
    display_name: Mapped[str] = mapped_column(String(128), default="", server_default="")
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # en | zh-CN, or "" until the person chooses one: the portal follows their browser's Accept-Language
    language: Mapped[str] = mapped_column(String(8), default="", server_default="en")
    # how the user hears that a job of theirs ended: "off", "app" (the portal and the API), "email" (also mailed)
    notify_job_ended: Mapped[str] = mapped_column(String(8), default="app", server_default="app")
    # active | suspended (no sign-in, no tokens, until reinstated) | deleted (the same, for good;
    # the row stays for the ledger's history)
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    status_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # loaded with the user (a detached user still knows its roles): services/tenancy/roles.py reads them
    grants: Mapped[list["RoleGrant"]] = relationship(lazy="selectin", cascade="all, delete-orphan",
                                                     order_by="RoleGrant.id")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    prefix: Mapped[str] = mapped_column(String(16))  # shown to identify a token
    name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # every token expires (auth.token_max_days)
    scope: Mapped[str] = mapped_column(String(8), default="full")  # full | read (GET/HEAD/OPTIONS only)

    user: Mapped[User] = relationship()


class Tenant(Base):
    """A customer organisation."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # university | research_institute | enterprise | government | individual
    segment: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(Base):
    """An account jobs are charged to (a project, or a tenant's own wallet); its money lives in the ledger."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="project")  # project | tenant
    # members are told once when available funds drop below this (re-armed above it)
    low_balance_threshold: Mapped[Decimal | None] = mapped_column(Money)
    low_balance_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    # when available funds go below zero (an overrun, a lowered credit line):
    # block (new jobs only), hold (suspend running jobs) or cancel, after a grace
    exhaustion_policy: Mapped[str] = mapped_column(String(8), default="block", server_default="block")
    exhaustion_grace_minutes: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    exhausted_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # a spending cap separate from the money on the account (per month, or in all)
    budget: Mapped[Decimal | None] = mapped_column(Money)
    budget_period: Mapped[str] = mapped_column(String(8), default="month", server_default="month")
    # notices for the account's members are also POSTed here (signed), if set
    webhook_url: Mapped[str | None] = mapped_column(Text)
    # the project workspace's quota (None: the platform default, [files] project_quota_gb)
    storage_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tenant: Mapped["Tenant | None"] = relationship()


class AccountMember(Base):
    __tablename__ = "account_members"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="member")  # member | pi
    # the most this member may spend from the account in a calendar month
    spend_limit: Mapped[Decimal | None] = mapped_column(Money)


class Contract(Base):
    """A tenant's negotiated price: a unit price that replaces the list price, or a discount on it."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("clusters.id"))  # None = every cluster
    partition: Mapped[str] = mapped_column(String(64), default="*")
    resource: Mapped[str] = mapped_column(String(16), default="*")  # core_hour | gpu_hour | mem_gb_hour | *
    unit_price: Mapped[Decimal | None] = mapped_column(Rate)
    discount_percent: Mapped[Decimal | None] = mapped_column(Rate)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    effective_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerAccount(Base):
    """Running sums of one ledger account, in cents; changed only with a transfer."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("code", "owner_key", "product_line", "currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16))  # customer | cash | revenue | adjustment
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    owner_key: Mapped[str] = mapped_column(String(32), default="")  # account id, "" for the platform's own
    product_line: Mapped[str] = mapped_column(String(32), default="")
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0)  # postpaid: may go this far below zero
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    # usage charged but not yet posted as a whole cent, in billionths (|carry| < one cent):
    # always the sum of its transfers' ``subcent`` (billing/ledger.py usage_cents)
    subcent_carry: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transfer(Base):
    """One immutable money movement. A post/void names the hold it resolves."""

    __tablename__ = "transfers"
    # open holds are few among millions of transfers: found through this index
    __table_args__ = (Index("ix_transfers_pending_debit", "pending", "debit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # idempotency key
    debit_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    credit_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # cents
    kind: Mapped[str] = mapped_column(String(16))  # topup | hold | post | void | charge | adjustment
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # unique: a hold is posted or voided once, ever
    pending_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"), unique=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    memo: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)  # statements by month
    # billionths this charge adds to (or, when a cent was posted for it, takes from) the debit
    # account's sub-cent carry: cents x 10^7 + subcent is the exact usage it stands for
    subcent: Mapped[int | None] = mapped_column(BigInteger)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # Slurm hands a lost job's id to a new one: the id alone is not a job's identity
        UniqueConstraint("cluster_id", "native_id", "submitted_at"),
        UniqueConstraint("owner_id", "idempotency_key"),  # a retried POST /jobs returns the first job
        Index("ix_jobs_owner_state", "owner_id", "state"),
        Index("ix_jobs_owner_id_id", "owner_id", "id"),  # a user's newest jobs first (GET /jobs), in a big table
        Index("ix_jobs_cluster_state", "cluster_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"))
    partition: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    native_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict] = mapped_column(JSON)
    script: Mapped[str] = mapped_column(Text)
    script_args: Mapped[list] = mapped_column(JSON, default=list)
    workdir: Mapped[str] = mapped_column(Text)
    stdout_path: Mapped[str] = mapped_column(Text)
    stderr_path: Mapped[str] = mapped_column(Text)
    cores: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    time_limit_minutes: Mapped[int | None] = mapped_column(Integer)
    # the most the job can cost (time limit x resources x price): reserved
    # against the balance while the job is unsettled
    max_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    # the hold on the account for max_cost, posted or voided at settlement
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id", use_alter=True))
    # posted while the job ran (interim charges), trued up at settlement
    interim_charged: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    interim_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    # "platform": submitted through ComputeNet; "direct": sbatch on the cluster
    # under a mapped Slurm account, found in accounting and charged the same
    origin: Mapped[str] = mapped_column(String(16), default="platform")
    # set once every accounting record of the finished job is charged
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # finished but no accounting record after the grace period: for an operator
    needs_reconcile: Mapped[bool] = mapped_column(Boolean, default=False)
    # since when the scheduler has not shown this live job (out of its queue, accounting not
    # final, or its id on someone else's job); long enough and the job is LOST
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the nodes it runs or ran on, as the scheduler wrote them when polled (squeue %N: "c[1-2]")
    node_list: Mapped[str | None] = mapped_column(Text)
    # suspended (running) or held (pending) because its account ran out of money
    paused_for_funds_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the router's decision: policy, every candidate's score and reasons (cnet job ID --why)
    routing: Mapped[dict | None] = mapped_column(JSON)
    predicted_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reroutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # an application-centre run: {"name", "version", "namespace", "params", "environment"}
    app: Mapped[dict | None] = mapped_column(JSON)
    # workspace files staged into the working directory: [{"path", "name", "size", "sha256"}]
    inputs: Mapped[list | None] = mapped_column(JSON)
    # what to fetch back when it ends: {"patterns": [...], "dest": "<workspace path>"}
    outputs: Mapped[dict | None] = mapped_column(JSON)
    collect_state: Mapped[str | None] = mapped_column(String(8))  # pending | done | failed
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the sampling agent runs in the job: on (samples to read) | done (all read) |
    # archived (old, downsampled) | None (not monitored)
    monitor_state: Mapped[str | None] = mapped_column(String(8))
    # the stored series' interval (the agent's, or the bucket once downsampled) and the gaps
    # a downsampled series keeps (shorter ones would vanish at the coarser interval)
    sample_interval_s: Mapped[float | None] = mapped_column(Float)
    sample_gaps: Mapped[list | None] = mapped_column(JSON)
    # accept, then submit (services/jobs/submitter.py): when the job was accepted for the submitter task
    # (None: submitted in the request), and the claim (a token) the one submitter that sends it to the
    # cluster wrote, with when; adoption by tag compares the cluster's submit time with that moment
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submit_claim: Mapped[str | None] = mapped_column(String(80))
    submit_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # with the id, the job's tag on the cluster (domain/sbatch.platform_tag): another installation's
    # (or an earlier database's) job 42 on the same cluster is never taken for ours; None: tagged before it
    tag_nonce: Mapped[str | None] = mapped_column(String(16), default=new_tag_nonce)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship()
    cluster: Mapped[Cluster] = relationship()
    account: Mapped[Account] = relationship()


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsageRecordRow(Base):
    """An accounting row as the scheduler reported it; seen again = same row."""

    __tablename__ = "usage_records"
    __table_args__ = (UniqueConstraint("cluster_id", "record_id", "submit_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"))
    record_id: Mapped[str] = mapped_column(String(64))
    native_id: Mapped[str] = mapped_column(String(64), index=True)
    submit_time: Mapped[datetime] = mapped_column(UTCDateTime)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    elapsed_seconds: Mapped[int] = mapped_column(BigInteger)
    cpus: Mapped[int] = mapped_column(Integer)
    mem_mb: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[int] = mapped_column(Integer)
    gpu_type: Mapped[str | None] = mapped_column(String(64))
    nodes: Mapped[int] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    partition: Mapped[str | None] = mapped_column(String(64))
    alloc_tres: Mapped[str] = mapped_column(Text, default="")
    # the array tasks the record stands for ("2", "0-3" for tasks cancelled before they
    # started); None for a plain job or a scheduler that does not say
    array_tasks: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Charge(Base):
    """The rated cost of one final accounting record. One per record, ever."""

    __tablename__ = "charges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    usage_record_id: Mapped[int] = mapped_column(ForeignKey("usage_records.id"), unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    core_seconds: Mapped[int] = mapped_column(BigInteger)
    gpu_seconds: Mapped[int] = mapped_column(BigInteger)
    price_core_hour: Mapped[Decimal] = mapped_column(Rate)
    price_gpu_hour: Mapped[Decimal] = mapped_column(Rate)
    amount: Mapped[Decimal] = mapped_column(Money)  # rounded to the cent by the configured rule, for display
    # the exact rated amount (billionths): what settlement charges, sub-cent usage included
    exact_amount: Mapped[Decimal | None] = mapped_column(FineMoney)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # the transfer that moved this money: the job's settlement, or its own
    # charge for a record that arrived after the job was settled
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# tables of the operational side, in their own modules; imported here so that every
# table is on Base.metadata (migrations, create_all) and importable from one place
from .ops_models import Delivery, Notification, RegisteredCluster, UnixIdentity  # noqa: E402,F401
from .app_models import App, FileRecord, Upload  # noqa: E402,F401
from .monitor_models import JobProfile, JobSample, JobStepSample  # noqa: E402,F401
from .admin_models import AuditEvent, ChargeAdjustment, ClosedPeriod, IssuedInvoice, RoleGrant, SlurmAccount  # noqa: E402,F401,E501
from .auth_models import ExternalIdentity, OidcLogin, PasswordCredential, PasswordReset, RefreshToken, SignInAttempt, WebSession  # noqa: E402,F401
from .worker_models import WorkerLease, WorkerRun  # noqa: E402,F401
from .session_models import InteractiveSession, SessionAccess  # noqa: E402,F401
from .event_models import OutboxEvent  # noqa: E402,F401
from .webhook_models import WebhookDelivery, WebhookEndpoint  # noqa: E402,F401
