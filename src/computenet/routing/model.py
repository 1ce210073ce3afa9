"""What the router reasons about: targets (cluster + partition), candidates, decisions.

Plain values, no database and no scheduler calls: the live service and the
simulator build them from their own state and hand them to the same router.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_UP, Decimal

from ..domain.money import CENT
from .. import messages


@dataclass(frozen=True)
class Target:
    cluster: str
    partition: str
    nodes: int
    cores_per_node: int
    mem_per_node_mb: int
    gpus_per_node: int = 0
    gpu_type: str | None = None
    max_time_minutes: int | None = None
    default_time_minutes: int | None = None
    is_default: bool = False
    region: str = ""
    site: str = ""
    ownership: str = "owned"  # owned | leased | partner
    health: str = "online"  # online | degraded | offline | unknown
    breaker_open: bool = False  # too many submission failures lately
    priced: bool = True
    backfill: bool = True  # Slurm backfills; the local executor is strict FIFO
    tags: tuple[str, ...] = ()
    dedicated_to: tuple[str, ...] = ()  # tenant names; empty = everyone
    node_names: frozenset[str] = frozenset()  # to see jobs of other partitions on the same nodes
    features: frozenset[str] | None = None  # on every node; None: not known (then Slurm decides)
    # partitions of the same cluster whose nodes all lie inside this one's (their waiting jobs compete)
    nested_partitions: frozenset[str] = frozenset()
    executor: str = "slurm"  # slurm | slurmrest | local: which sbatch options it honours (sbatch_options)

    @property
    def name(self) -> str:
        return f"{self.cluster}/{self.partition}"


@dataclass(frozen=True)
class Constraints:
    """What the user pinned or bounded (all optional)."""

    cluster: str | None = None
    partition: str | None = None
    region: str | None = None
    max_price: Decimal | None = None
    max_wait_s: float | None = None
    tenant: str | None = None
    data_at: tuple[str, ...] = ()  # clusters (or sites) that already hold the job's input
    no_identity: frozenset[str] = frozenset()  # clusters where the user has no Unix identity
    # only these clusters can run the job (an app installed there); None: any
    only_clusters: frozenset[str] | None = None
    only_reason: str = "cannot run the job"
    # ((cluster kind, "--option: why"), ...): kinds that cannot honour an option the job uses
    refused_kinds: tuple[tuple[str, str], ...] = ()


@dataclass
class Candidate:
    target: Target
    feasible: bool = True
    reasons: list[str] = field(default_factory=list)  # why not, when not feasible
    time_limit_minutes: int | None = None
    price: Decimal | None = None  # the most the job can cost there, exactly (ranks candidates)
    wait_s: float | None = None  # predicted wait from now; None = cannot tell
    has_data: bool = False
    score: float | None = None
    explanation: str = ""

    @property
    def held(self) -> Decimal | None:
        """What is held for the job there: its price rounded up to the cent, so the hold covers the charge."""
        return None if self.price is None else self.price.quantize(CENT, rounding=ROUND_UP)

    def refuse(self, reason: str) -> None:
        self.feasible = False
        self.reasons.append(reason)

    def to_json(self) -> dict:
        return {"cluster": self.target.cluster, "partition": self.target.partition,
                "ownership": self.target.ownership, "region": self.target.region, "feasible": self.feasible,
                "reasons": self.reasons, "time_limit_minutes": self.time_limit_minutes,
                "price": None if self.price is None else str(self.held),
                "wait_s": None if self.wait_s is None else round(self.wait_s, 1), "has_data": self.has_data,
                "score": None if self.score is None or not math.isfinite(self.score) else round(self.score, 6),
                "explanation": self.explanation,
                # the reasons again as templates and parameters: a page says them in its reader's language
                "reasons_said": [messages.dump(reason) for reason in self.reasons],
                "explanation_said": messages.dump(self.explanation)}


@dataclass
class Decision:
    policy: str
    ranked: list[Candidate]  # feasible, best first
    rejected: list[Candidate]
    decided_at: datetime | None = None
    notes: list[str] = field(default_factory=list)  # e.g. failover attempts

    @property
    def chosen(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    def to_json(self) -> dict:
        return {"policy": self.policy, "decided_at": self.decided_at.isoformat() if self.decided_at else None,
                "chosen": self.chosen.target.name if self.chosen else None,
                "candidates": [c.to_json() for c in self.ranked + self.rejected], "notes": list(self.notes)}

