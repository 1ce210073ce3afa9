"""Configuration: a TOML file plus ``COMPUTENET_*`` environment variables.

The file is ``$COMPUTENET_CONFIG`` or ``<data dir>/config.toml``; environment
variables win over it (nested keys with ``__``: ``COMPUTENET_SERVER__PORT``).
TOML numbers with a fraction are read as Decimal, never float, so prices
keep their cents.
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def default_data_dir() -> Path:
    """~/.local/share/computenet; /var/lib/computenet for root, as a system service keeps its state
    (a data directory under /root, 0700, is one the local executor's job users could not reach)."""
    if os.environ.get("XDG_DATA_HOME"):
        return Path(os.environ["XDG_DATA_HOME"]) / "computenet"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/computenet")
    return Path(os.path.expanduser("~"), ".local", "share", "computenet")


class _Strict(BaseModel):
    """Every level refuses keys it does not know: a typo (`slot = 7`) must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Price(_Strict):
    """List price of a partition, per hour, in the platform currency."""

    core_hour: Decimal = Field(ge=0)
    gpu_hour: Decimal = Field(Decimal("0"), ge=0)
    mem_gb_hour: Decimal = Field(Decimal("0"), ge=0)
    gpu_hour_by_model: dict[str, Decimal] = Field(default_factory=dict)  # e.g. {"a100": "9.50"}

    @field_validator("core_hour", "gpu_hour", "mem_gb_hour", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError("prices must be written as strings or exact decimals, not floats")
        return value

    @field_validator("core_hour", "gpu_hour", "mem_gb_hour")
    @classmethod
    def _places(cls, value: Decimal) -> Decimal:
        if value != value.quantize(Decimal("0.000001")):
            raise ValueError(f"price {value} has more than 6 decimal places")
        return value

    @field_validator("gpu_hour_by_model")
    @classmethod
    def _model_prices(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for model, price in value.items():
            if price < 0 or price != price.quantize(Decimal("0.000001")):
                raise ValueError(f"GPU price for {model}: {price} is negative or has more than 6 decimal places")
        return value


class IssuerConfig(_Strict):
    """Who issues the statements: printed at the top of every statement PDF."""

    name: str = "ComputeNet"
    address: str = ""
    tax_id: str = ""  # 纳税人识别号
    payment: str = ""  # payment instructions: bank, account, reference
    # an image the invoices and statements (pages and PDFs) show in their title block: an image file
    # on this server (embedded as a data: URL: the pages' Content-Security-Policy and the PDF load
    # images from nowhere else) or a data: URL
    logo: str = ""


class InvoiceConfig(_Strict):
    """Invoices of closed months: numbering, discounts and tax (percentages, never floats)."""

    number_prefix: str = Field("INV", pattern=r"^[A-Z0-9-]{1,12}$")
    due_days: int = Field(30, ge=0, le=365)
    # product line -> VAT percent, e.g. {"hpc": "6"}; a line not named is not taxed
    tax_rates: dict[str, Decimal] = Field(default_factory=dict)
    # whether the price book's prices include that VAT (含税价): then an invoice's totals are what the ledger
    # charged (less any discount) and the VAT is worked out of them; otherwise it is added on top
    prices_include_tax: bool = False
    # account name -> discount percent off every line of its invoices, e.g. {"tsinghua-chem": "12.5"}
    discounts: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("tax_rates", "discounts")
    @classmethod
    def _percentages(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for name, percent in value.items():
            if not Decimal(0) <= percent <= Decimal(100) or percent != percent.quantize(Decimal("0.0001")):
                raise ValueError(f"{name}: {percent} % must be between 0 and 100 with at most 4 decimal places")
        return {name: Decimal(f"{percent.normalize():f}") for name, percent in value.items()}  # 1E+1 -> 10


class BillingConfig(_Strict):
    """How amounts are rounded (to the cent) and the least a job that ran is charged."""

    rounding: Literal["half_up", "up", "down"] = "half_up"
    minimum_charge: Decimal = Field(Decimal("0"), ge=0)
    issuer: IssuerConfig = Field(default_factory=IssuerConfig)
    invoice: InvoiceConfig = Field(default_factory=InvoiceConfig)


# the ClusterConfig fields that price owned capacity per node-hour (kept on the clusters table)
OWNED_COST_FIELDS = ("node_capex", "depreciation_years", "node_watts", "power_price_kwh", "pue", "node_opex_hour")


class ClusterConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["local", "slurm"]
    # where users' job directories live, as the cluster's nodes see it;
    # default for local: the users' workspaces (<files root>/users), so jobs and `cnet files` share one tree
    workdir_root: str | None = None
    # prices per partition; "*" is the cluster-wide default
    prices: dict[str, Price] = Field(default_factory=dict)
    # product line per partition ("*" = the rest): revenue is booked per line
    product_lines: dict[str, str] = Field(default_factory=dict)
    # where it is and whose it is: the router's owned-first policy and the margin reports
    region: str = ""
    site: str = ""
    ownership: Literal["owned", "leased", "partner"] = "owned"
    # what a core-hour / card-hour costs the operator (depreciation and power, or the lease price)
    cost_core_hour: Decimal | None = Field(None, ge=0)
    cost_gpu_hour: Decimal | None = Field(None, ge=0)
    # owned capacity costs every hour, used or not (operator reports): a node's purchase price
    # written off over depreciation_years, its average draw x PUE x power price, other opex per node-hour
    node_capex: Decimal | None = Field(None, ge=0)
    depreciation_years: Decimal | None = Field(None, gt=0)
    node_watts: int | None = Field(None, ge=0)
    power_price_kwh: Decimal | None = Field(None, ge=0)
    pue: Decimal | None = Field(None, ge=1)
    node_opex_hour: Decimal | None = Field(None, ge=0)
    tags: list[str] = Field(default_factory=list)  # software, interconnect, storage ...
    # partitions reserved for some tenants (by tenant name); others may not be routed there
    dedicated: dict[str, list[str]] = Field(default_factory=dict)
    # list price of one GB kept for one day on this site's storage (workspaces, job files)
    storage_gb_day: Decimal | None = Field(None, ge=0)
    # billing strategy per partition ("*" = the rest): see billing/rating.py
    billing_strategies: dict[str, Literal["cores", "gpus", "max_cores_memory", "max_gpus_cores"]] = Field(
        default_factory=dict)
    poll_interval_s: float = Field(5.0, gt=0)
    # local executor
    slots: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    mem_mb: int = Field(16_000, ge=1)
    gpus: int = Field(0, ge=0)
    partition: str = Field("local", pattern=NAME_PATTERN)
    max_time_minutes: int | None = Field(24 * 60, ge=1)
    # local: "auto" isolates jobs (own uid per user, PID namespace) when the server is root and can,
    # else serves one tenant and says so; "required" refuses to start without; "off": one tenant
    isolation: Literal["auto", "required", "off"] = "auto"
    # local: the dedicated uids of users without a mapped Unix login (no /etc/passwd entries needed)
    job_uid_min: int = Field(70000, ge=1000)
    job_uid_max: int = Field(79999, ge=1000)
    # slurm
    slurm_conf: str | None = None  # on the host that runs the commands (this one, or the SSH login node)
    bin_dir: str | None = None
    # how Slurm commands reach the cluster: on this host, or on a login node over SSH
    transport: Literal["local", "ssh", "rest"] = "local"
    rest_url: str | None = None  # slurmrestd, e.g. http://login1:6820
    rest_user: str = "slurm"  # the service's Slurm user for reads
    rest_token: str | None = None  # a fixed JWT for rest_user; else tokens are minted with scontrol token
    ssh_host: str | None = None
    ssh_port: int = Field(22, ge=1, le=65535)
    ssh_user: str | None = None
    ssh_key: str | None = None  # private key file of the service account
    ssh_known_hosts: str | None = None  # required, unless ssh_accept_any_host_key (test beds only)
    ssh_accept_any_host_key: bool = False
    # with run_as_users: each user's private key, "{user}" replaced by their login there
    ssh_user_key: str | None = None
    # jobs run as each user's mapped Unix identity (cnet admin map-user), never as the service
    # account; users without an identity there cannot be routed to this cluster
    run_as_users: bool = False
    timezone: str | None = None  # the cluster's wall-clock zone (IANA name)
    slurm_cluster: str | None = None  # ClusterName in its slurm.conf, if not the same as name
    # where each job carries the platform's tag computenet:<id> (how a job is found again after a crash
    # between sbatch and storing its id): "wckey", or "comment" where the site enforces workload keys
    # (TrackWCKey with AccountingStorageEnforce=wckeys refuses an unknown wckey); a user's own comment
    # is kept after the tag. See clusters/slurm/tags.py.
    job_tag: Literal["wckey", "comment"] = "wckey"

    @model_validator(mode="after")
    def _needs(self) -> "ClusterConfig":
        if self.kind == "slurm" and not self.workdir_root:
            raise ValueError(f"cluster {self.name}: slurm clusters need workdir_root (a directory the nodes share)")
        if self.kind == "local" and self.job_tag != "wckey":
            raise ValueError(f"cluster {self.name}: job_tag is for slurm clusters (the local executor keeps its own)")
        # half a cost model would report a made-up margin: each pair comes together
        for first, second in (("node_capex", "depreciation_years"), ("node_watts", "power_price_kwh")):
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise ValueError(f"cluster {self.name}: {first} and {second} are set together")
        return self

    def billing_strategy(self, partition: str) -> str:
        return self.billing_strategies.get(partition) or self.billing_strategies.get("*") or "cores"

    def product_line(self, partition: str) -> str:
        return self.product_lines.get(partition) or self.product_lines.get("*") or "hpc"

    def price_for(self, partition: str) -> Price | None:
        return self.prices.get(partition) or self.prices.get("*")


class NotificationsConfig(_Strict):
    """Where notices go besides the in-app list: e-mail (SMTP) and signed webhooks."""

    smtp_host: str | None = None  # unset: no e-mail is sent (notices wait until it is set)
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "computenet@localhost"
    # HMAC-SHA256 of the body with this secret goes in X-ComputeNet-Signature
    webhook_secret: str | None = None
    # webhooks go only to globally routable addresses (ipaddress' is_global), checked when set and
    # again when sent; webhook_allow_networks adds CIDRs (e.g. "10.20.0.0/16"), webhook_allow_private all
    webhook_allow_private: bool = False
    webhook_allow_networks: list[str] = Field(default_factory=list)
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    # quiet grouping: a job-ended e-mail waits this long, and those of one user's jobs that ended meanwhile
    # go with it as one message (an array, a sweep of a hundred jobs); 0: each at once, still grouped per pass
    job_ended_group_s: float = Field(60.0, ge=0)

    @field_validator("webhook_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"webhook_allow_networks: {exc}") from None
        return value


class RoutingConfig(_Strict):
    """How the network picks a cluster and partition for a job (see routing/policies.py)."""

    policy: Literal["earliest_start", "cheapest", "owned_first", "data_locality", "weighted"] = "earliest_start"
    owned_first_max_wait_minutes: float = Field(30.0, ge=0)  # owned capacity wins while its wait is within this
    # weighted: lower score wins; each term is normalised to [0, 1] over the candidates
    weights: dict[str, float] = Field(default_factory=lambda: {"wait": 1.0, "price": 1.0, "leased": 0.3, "data": 0.5})
    queue_cache_seconds: float = Field(10.0, ge=0)  # a queue read serves the routing of this many seconds
    # a job still pending this long after its predicted start is moved (once per decision)
    reroute_after_minutes: float = Field(30.0, gt=0)
    max_reroutes: int = Field(1, ge=0)
    # circuit breaker: this many submission failures in a row keep a cluster out for cooldown
    breaker_failures: int = Field(3, ge=1)
    breaker_cooldown_seconds: float = Field(120.0, gt=0)
    # a cluster out of service (offline, degraded, circuit open) is probed this often and back when it answers
    probe_interval_seconds: float = Field(5.0, gt=0)


class FilesConfig(_Strict):
    """Platform storage: users' and projects' workspaces, uploads, what is staged to clusters."""

    root: str | None = None  # default: <data dir>/storage
    user_quota_gb: Decimal = Field(Decimal("50"), gt=0)
    project_quota_gb: Decimal = Field(Decimal("500"), gt=0)  # per project; an operator may set one per account
    max_file_gb: Decimal = Field(Decimal("200"), gt=0)  # one upload or one fetched output
    chunk_mb: int = Field(8, ge=1, le=64)  # upload chunk size offered to clients
    keep_uploads_hours: float = Field(48.0, gt=0)  # unfinished uploads are dropped after this
    # the site where platform storage sits: clusters at this site count as holding a job's input
    site: str = ""
    # whose storage price (storage_gb_day) meters workspaces; default: the default cluster
    storage_cluster: str | None = None
    # largest output file fetched back per job (bigger ones are listed, left on the cluster)
    max_output_gb: Decimal = Field(Decimal("50"), gt=0)


class MonitoringConfig(_Strict):
    """The sampling agent every shell batch script gets (see monitoring/inject.py)."""

    enabled: bool = True
    interval_s: float = Field(10.0, ge=0.2)  # between samples; under 1 % of a core at 10 s
    collect_every_s: float = Field(60.0, gt=0)  # how often a running job's samples are read in
    # a running job whose GPUs all stay under 5 % this long: its owner is told, and with
    # idle_gpu_action = "cancel" the job is cancelled (the card goes back to people who use it)
    idle_gpu_minutes: float = Field(30.0, gt=0)
    idle_gpu_action: Literal["notify", "cancel"] = "notify"
    # the API as compute nodes reach it (e.g. http://login1:8750): agents also POST their samples
    # there as they go; unset, samples are read from the job's directory only
    agent_url: str | None = None
    agent_secret: str | None = None  # signs each job's agent token; default: <data dir>/agent.key
    # Slurm's sstat for running jobs' steps (every node and task; what srun/MPI work used)
    step_usage: bool = True
    # samples of jobs ended longer ago than this are downsampled to one per downsample_s
    keep_full_days: float = Field(30.0, ge=0)
    downsample_s: float = Field(300.0, gt=0)


class GroupMapping(_Strict):
    """A directory group or OIDC group claim value: the tenant its members join and the roles they hold.

    Roles are platform-wide (operator, finance, vendor) or tenant_admin of the mapped tenant. A
    mapping naming a tenant that does not exist stops `cnet server` at start-up, naming the line.
    """

    group: str = Field(min_length=1, max_length=255)
    tenant: str | None = Field(None, pattern=NAME_PATTERN)
    roles: list[Literal["operator", "finance", "vendor", "tenant_admin"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tenant_admin_needs_tenant(self) -> "GroupMapping":
        if "tenant_admin" in self.roles and self.tenant is None:
            raise ValueError(f"group {self.group!r}: role tenant_admin needs a tenant")
        return self


class LdapConfig(_Strict):
    """Sign-in by a bind against the centre's directory (OpenLDAP, FreeIPA, Active Directory).

    The user's entry is found with ``user_filter`` under ``user_base`` (as ``bind_dn``, or anonymously),
    then bound to with the password typed; their groups are the entries under ``group_base`` that
    ``group_filter`` finds. ``{login}`` and ``{dn}`` are filled in LDAP-escaped.
    """

    url: str  # ldap://host:389 or ldaps://host:636 (several, space-separated: tried in turn)
    bind_dn: str | None = None  # a service account for the search; unset: anonymous search
    bind_password: str | None = None
    user_base: str
    user_filter: str = "(uid={login})"
    group_base: str | None = None
    group_filter: str = "(|(member={dn})(memberUid={login}))"
    group_name_attribute: str = "cn"
    display_name_attribute: str = "cn"
    email_attribute: str = "mail"
    start_tls: bool = False
    ca_file: str | None = None  # trusted CA for ldaps:// or StartTLS; unset: the system's
    timeout_s: float = Field(5.0, gt=0)
    create_users: bool = True  # just-in-time: a directory user signing in for the first time gets an account
    default_tenant: str | None = Field(None, pattern=NAME_PATTERN)  # for users no mapped group places
    groups: list[GroupMapping] = Field(default_factory=list)


class OidcConfig(_Strict):
    """Sign-in with an OpenID Connect provider (Keycloak, campus SSO, CARSI): authorization code + PKCE."""

    name: str = Field("sso", pattern=NAME_PATTERN)  # in URLs (/auth/oidc/<name>/...) and identities
    title: str = ""  # on the sign-in button; default: the name
    issuer: str  # discovery at <issuer>/.well-known/openid-configuration; tokens must name it exactly
    client_id: str
    client_secret: str | None = None  # unset: a public client (PKCE only)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    login_claim: str = "preferred_username"  # the platform login name; falls back to "sub"
    groups_claim: str = "groups"
    timeout_s: float = Field(5.0, gt=0)
    create_users: bool = True
    default_tenant: str | None = Field(None, pattern=NAME_PATTERN)
    groups: list[GroupMapping] = Field(default_factory=list)


class AuthConfig(_Strict):
    """How people sign in and how long what they get lasts (see services/signin/)."""

    # API tokens: every token expires; read-only tokens may only read (services/tenancy/tokens.py)
    token_default_days: int = Field(90, ge=1)  # a new token's life when none is asked for
    token_max_days: int = Field(365, ge=1)  # the longest anyone may ask for (operators included)
    # local passwords: at least this long, with characters of this many classes (lower, upper,
    # digit, other) unless at least passphrase_length long; never containing the login name
    password_min_length: int = Field(10, ge=8, le=128)
    password_min_classes: int = Field(3, ge=1, le=4)
    passphrase_length: int = Field(20, ge=8)
    # lockout: this many failures in lockout_window_minutes lock the login (or the client address,
    # for client_lockout_failures) for lockout_minutes; an operator can unlock earlier
    lockout_failures: int = Field(5, ge=1)
    client_lockout_failures: int = Field(20, ge=1)
    lockout_window_minutes: float = Field(15.0, gt=0)
    lockout_minutes: float = Field(15.0, gt=0)
    # browser sessions: signed out after this long idle, and after session_absolute_hours in any case
    session_idle_minutes: float = Field(30.0, gt=0)
    session_absolute_hours: float = Field(12.0, gt=0)
    # the Secure cookie attribute: auto = when the request came over https (or X-Forwarded-Proto says so)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # `cnet login`: a short-lived API token plus a refresh token, rotated on each use
    login_token_minutes: int = Field(60, ge=1)
    refresh_days: int = Field(30, ge=1)
    reset_link_minutes: int = Field(60, ge=5)  # e-mailed password-reset and e-mail verification links
    # the portal's address as people reach it, for links in e-mails (default http://<server.host>:<port>)
    public_url: str | None = None
    ldap: LdapConfig | None = None
    oidc: list[OidcConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _default_within_max(self) -> "AuthConfig":
        if self.token_default_days > self.token_max_days:
            raise ValueError(f"auth.token_default_days ({self.token_default_days}) exceeds "
                             f"auth.token_max_days ({self.token_max_days})")
        names = [provider.name for provider in self.oidc]
        if len(set(names)) != len(names):
            raise ValueError(f"auth.oidc provider names must be unique: {names}")
        return self


class SimConfig(_Strict):
    """The portal's simulator (cnet sim's engine run as background work; see services/network/simulations.py)."""

    traces_dir: str | None = None  # the traces operators pick from; default: <data dir>/traces
    max_upload_mb: int = Field(64, ge=1, le=4096)  # one uploaded SWF log
    max_jobs: int = Field(200_000, ge=1)  # the most jobs one run replays
    concurrent: int = Field(1, ge=1, le=2)  # simulations running at once (each holds a CPU)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8750, ge=1, le=65535)
    # per caller (token, sign-in or address), in the limits library's words; "" turns it off
    rate_limit: str = "300/second;12000/minute"
    # memory:// counts in each process; redis://host:6379 shares the count between API replicas
    rate_limit_storage: str = Field("memory://", pattern=r"^(async\+)?(memory|redis|rediss|redis\+sentinel|redis\+cluster|memcached|mongodb)://")

    @field_validator("rate_limit")
    @classmethod
    def _rate_rules(cls, value: str) -> str:
        # the limits library's grammar, checked without importing it (0.4 s: the CLI reads this file too)
        rule = r"\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*"
        if value.strip() and not re.fullmatch(rf"{rule}([;,]{rule})*", value):
            raise ValueError(f"rate_limit {value!r}: write rules like '300/second;12000/minute'")
        return value


class WorkersConfig(_Strict):
    """Background tasks run under leases in the database (see workers/): a process that dies loses
    its tasks within lease_seconds, and another worker takes them over."""

    lease_seconds: float = Field(15.0, ge=2, le=600)
    claim_every_s: float = Field(1.0, gt=0, le=60)  # how often an idle worker looks for a lapsed lease
    record_runs: bool = False  # keep a row per run in worker_runs (audits, the takeover test)
    # the submitter task (services/jobs/submitter.py): accepted jobs claimed at a time, sbatch calls in
    # parallel per cluster, and how often it looks for jobs accepted by another process
    submit_batch: int = Field(32, ge=1, le=500)
    submit_threads: int = Field(4, ge=1, le=32)
    submit_poll_s: float = Field(0.2, gt=0, le=10)


class EventsConfig(_Strict):
    """Domain events (docs/events.md): the outbox is always written; it is published to NATS
    JetStream when nats_url is set (subjects <subject_prefix>.<tenant>.events.<type>)."""

    nats_url: str | None = Field(None, pattern=r"^(nats|tls|ws|wss)://\S+$")  # e.g. nats://127.0.0.1:4222
    stream: str = Field("COMPUTENET_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    subject_prefix: str = Field("computenet", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    publish_every_s: float = Field(2.0, gt=0, le=600)
    batch: int = Field(500, ge=1, le=10000)
    timeout_s: float = Field(5.0, gt=0, le=120)
    # the outbox clean-up (services/integration/outbox_cleanup.py): published events (and finished webhook
    # deliveries) older than this are deleted, `cleanup_batch` rows per transaction
    retention_hours: float = Field(168.0, gt=0)
    cleanup_batch: int = Field(1000, ge=1, le=100000)
    cleanup_every_s: float = Field(3600.0, gt=0)
    # jobs by message (services/jobs/job_requests.py): requests on <prefix>.<tenant>.jobs.submit, answers on
    # <prefix>.<tenant>.jobs.replies.<idempotency key>, each in a stream of its own
    job_requests: bool = True
    request_stream: str = Field("COMPUTENET_JOB_REQUESTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    reply_stream: str = Field("COMPUTENET_JOB_REPLIES", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    requests_every_s: float = Field(1.0, gt=0, le=600)


class WebhooksConfig(_Strict):
    """Webhook endpoints fed from the outbox (services/integration/webhooks.py, docs/webhooks.md); the address
    rules ([notifications] webhook_allow_private / webhook_allow_networks) apply to them."""

    every_s: float = Field(2.0, gt=0, le=600)  # fan-out and send pass
    timeout_s: float = Field(10.0, gt=0, le=120)  # one POST, connect to last byte
    max_attempts: int = Field(8, ge=1, le=100)  # then the delivery is dead, its reason kept
    backoff_s: float = Field(30.0, gt=0)  # after the n-th failure: backoff_s * 2**(n-1), at most max_backoff_s
    max_backoff_s: float = Field(6 * 3600.0, gt=0)
    parallel: int = Field(8, ge=1, le=64)  # endpoints sent to at once (each endpoint: one POST at a time)
    per_endpoint: int = Field(100, ge=1, le=10000)  # deliveries per endpoint per pass
    max_endpoints: int = Field(10, ge=1, le=100)  # per account


class SessionsConfig(_Strict):
    """Interactive sessions (services/sessions): how long a server may take to answer, how long
    one may sit unused, and how often the watch looks."""

    start_timeout_s: float = Field(300.0, gt=0)  # from the job's start to the server's first answer
    idle_minutes: float = Field(60.0, gt=0)  # no proxied request this long: stopped, the owner told
    watch_interval_s: float = Field(2.0, gt=0)
    probe_timeout_s: float = Field(3.0, gt=0)
    # sessions run the user's code (a notebook's JavaScript), so they are served on an origin of
    # their own, never the portal's (api/session_origin.py): "https://sessions.example.org", or
    # "https://{id}.sessions.example.org" with wildcard DNS (each session its own origin too).
    # Unset: a second listening port on the server's host, reached as http://localhost:<port> when
    # the portal is http://127.0.0.1:... (another host name: another cookie jar and another site)
    origin: str | None = Field(None, pattern=r"^https?://(\{id\}\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$")
    port: int | None = Field(None, ge=0, le=65535)  # that second port (0: any free); default server.port + 1
    ticket_seconds: float = Field(30.0, gt=0, le=300)  # a "connect" ticket's life (used once)
    warn_minutes_before_end: float = Field(10.0, ge=0)  # the owner is told this long before the limit (0: never)
    time_limit_grace_s: float = Field(120.0, ge=0)  # past the limit by this much, the platform ends it


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPUTENET_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    clusters: list[ClusterConfig] = Field(default_factory=list)
    default_cluster: str | None = None
    server: ServerConfig = Field(default_factory=ServerConfig)
    currency: str = "CNY"
    # the portal shows times in this zone (an IANA name); the API and the database keep UTC
    display_timezone: str = "Asia/Shanghai"
    # hours a finished job may wait for its accounting record before an
    # operator is told (sacct lags; a lost record must not go unnoticed)
    accounting_grace_minutes: int = Field(10, ge=1)
    # a running job is charged for what it has used so far this often, so a
    # long job never runs up an unbounded bill
    interim_charge_seconds: int = Field(900, ge=1)
    billing: BillingConfig = Field(default_factory=BillingConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    sim: SimConfig = Field(default_factory=SimConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    # client side
    url: str | None = None
    token: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment overrides what the file (passed as init) says
        return (env_settings, init_settings)

    @field_validator("display_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"display_timezone: unknown time zone {value!r} (e.g. Asia/Shanghai, UTC)") from None
        return value

    @model_validator(mode="after")
    def _defaults(self) -> "Settings":
        if not self.clusters:
            self.clusters = [
                # apps run through their stand-ins here: the real codes are not installed
                ClusterConfig(name="local", kind="local", tags=["stand-in"],
                              prices={"*": Price(core_hour=Decimal("0.05"), gpu_hour=Decimal("2.00"))})
            ]
        names = [c.name for c in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be unique: {names}")
        if self.default_cluster is None:
            self.default_cluster = names[0]
        elif self.default_cluster not in names:
            raise ValueError(f"default_cluster {self.default_cluster!r} is not a configured cluster")
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'computenet.db'}"

    def cluster(self, name: str) -> ClusterConfig:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise KeyError(name)

    def storage_root(self) -> Path:
        return Path(self.files.root) if self.files.root else self.data_dir / "storage"

    def workdir_root(self, cluster: ClusterConfig) -> str:
        # a local cluster's jobs run in their owners' workspaces (one tree: what a job writes is
        # what `cnet files` shows, and an uploaded file is there for the job to read)
        return cluster.workdir_root or str(self.storage_root() / "users")


def config_path(config_file: str | Path | None = None) -> Path | None:
    """The configuration file load_settings reads, if any."""
    path = config_file or os.environ.get("COMPUTENET_CONFIG")
    if path is None:
        data_dir = Path(os.environ.get("COMPUTENET_DATA_DIR") or default_data_dir())
        candidate = data_dir / "config.toml"
        return candidate if candidate.exists() else None
    return Path(path)


def load_settings(config_file: str | Path | None = None, **overrides: object) -> Settings:
    path = config_path(config_file)
    data: dict = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle, parse_float=Decimal)
        except FileNotFoundError:
            raise SystemExit(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SystemExit(f"configuration file {path}: {exc}") from None
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        unknown = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
        if path is None or not unknown:
            raise
        text = path.read_text(encoding="utf-8", errors="replace")
        raise SystemExit("\n".join(f"configuration file {path}{_where(text, e['loc'])}: unknown key "
                                   f"{'.'.join(str(p) for p in e['loc'])!r}" for e in unknown)) from None


def _where(text: str, loc: tuple) -> str:
    """' line N' for a key's place in the TOML text (tomllib keeps no positions); '' if not there
    (the key came from a COMPUTENET_* variable, or is written in a form not searched for)."""
    import re

    lines = text.splitlines()
    start = 0
    # the table the key is in: the n-th [[a]] (deeper parts are inline tables within it), or the
    # longest [a.b] header naming a prefix of its path; top-level keys come before any header
    parts = list(loc[:-1])
    if any(isinstance(p, int) for p in parts):
        cut = next(i for i, p in enumerate(parts) if isinstance(p, int))
        header = re.compile(rf"^\s*\[\[\s*{re.escape('.'.join(str(p) for p in parts[:cut]))}\s*\]\]")
        found = [i for i, line in enumerate(lines) if header.match(line)]
        start = found[parts[cut]] + 1 if parts[cut] < len(found) else 0
    else:
        for size in range(len(parts), 0, -1):
            header = re.compile(rf"^\s*\[\s*{re.escape('.'.join(str(p) for p in parts[:size]))}\s*\]")
            found = [i for i, line in enumerate(lines) if header.match(line)]
            if found:
                start = found[0] + 1
                break
    end = next((i for i in range(start, len(lines)) if re.match(r"^\s*\[", lines[i])), len(lines))
    name = re.escape(str(loc[-1]))
    key = re.compile(rf"(^|[{{,\s]){name}\s*=|(^|[{{,\s])[\"']{name}[\"']\s*=")
    for i in range(start, end):
        if key.search(lines[i]):
            return f" line {i + 1}"
    return ""
