"""Queue-wait prediction: the live queue of a partition forward-simulated with
EASY backfilling (or FIFO where the scheduler does not backfill), corrected by
history.

History enters twice: jobs tend to end before their limits (``runtime_ratio``:
expected run time / limit on that cluster, from finished jobs), which frees
resources earlier than the scheduler's own plan; and a per-cluster bias
(median of actual minus predicted starts) absorbs what the model misses
(priorities changing, nodes shared between partitions).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clusters.base import QueueEntry
from ..domain.states import JobState
from .easy import Need, Pool, QueuePlan, Running, Waiting
from .model import Target

# pending jobs that wait for something other than resources do not take any
_NOT_ELIGIBLE = ("Dependency", "JobHeld", "BeginTime", "DependencyNeverSatisfied", "AssocGrp", "AssocMax",
                 "QOSGrp", "QOSMax", "PartitionDown", "PartitionInactive", "ReqNodeNotAvail", "InvalidAccount")
UNLIMITED_S = 365 * 86400


@dataclass(frozen=True)
class History:
    runtime_ratio: float = 1.0  # expected run time / time limit (0 < r <= 1), the cluster's
    bias_s: float = 0.0  # add to every prediction on this cluster
    # per user (their login on the cluster, as squeue shows it): some users' jobs run to the
    # limit, others end in minutes; a tuple so that a History can key a cache
    user_ratios: tuple[tuple[str, float], ...] = ()
    # per job in the queue (native id): what the application characteristics say its app runs for
    job_ratios: tuple[tuple[str, float], ...] = ()

    def ratio_for_entry(self, entry: QueueEntry) -> float:
        for native_id, ratio in self.job_ratios:
            if native_id == entry.native_id:
                return ratio
        return self.ratio_for(entry.user)

    def ratio_for(self, user: str | None) -> float:
        for name, ratio in self.user_ratios:
            if name == user:
                return ratio
        return self.runtime_ratio


def _order_key(entry: QueueEntry) -> tuple:
    base, _, task = entry.native_id.partition("_")
    number = int(base) if base.isdigit() else 0
    task_no = int(task) if task.isdigit() else 0
    return (-entry.priority, number, task_no)


def _eligible(entry: QueueEntry) -> bool:
    return not (entry.reason and entry.reason.startswith(_NOT_ELIGIBLE))


def predict_wait(target: Target, queue: list[QueueEntry], cores: int, gpus: int, limit_s: float,
                 history: History = History()) -> float | None:
    """Seconds from now until a new job of this shape would start on ``target``;
    None when it cannot start within the planning horizon."""
    return wait_on(plan(target, queue, history), cores, gpus, limit_s, history)


def wait_on(queue_plan: QueuePlan, cores: int, gpus: int, limit_s: float, history: History = History()) -> float | None:
    """The wait of a new job on a plan made once per queue snapshot (cheap: no simulation)."""
    start = queue_plan.start(Need(cores, gpus), limit_s)
    return None if start is None else max(0.0, start + history.bias_s)


def plan(target: Target, queue: list[QueueEntry], history: History = History()) -> QueuePlan:
    """The target's queue ahead, simulated once (see easy.QueuePlan)."""
    total = Pool(target.nodes * target.cores_per_node, target.nodes * target.gpus_per_node)
    running: list[Running] = []
    pending: list[tuple[QueueEntry, Waiting]] = []
    for entry in queue:
        ratio = min(1.0, max(0.05, history.ratio_for_entry(entry)))
        limit = entry.time_limit_s if entry.time_limit_s is not None else UNLIMITED_S
        need = _share(entry, target)
        if need is None:
            continue
        if entry.state in (JobState.RUNNING, JobState.SUSPENDED):
            expected, planned = _remaining(limit, limit * ratio, entry.elapsed_s)
            running.append(Running(need, planned_end=planned, expected_end=expected))
        elif entry.state == JobState.PENDING and _eligible(entry):
            pending.append((entry, Waiting(entry.native_id, need, limit, limit * ratio)))
    pending.sort(key=lambda pair: _order_key(pair[0]))
    return QueuePlan(0.0, total, running, [w for _, w in pending], backfill=target.backfill)


OVERDUE_MIN_S = 60.0


def _remaining(limit: float, expected_run: float, elapsed: float) -> tuple[float, float]:
    """A running job's (expected, planned) seconds until it ends.

    On time: its expected run time and its limit, less what it has run (never sooner
    than in OVERDUE_MIN_S, while its limit allows: a job seen running takes a while to
    end and be cleaned up). Overdue (past
    its expected run time, or past its limit: OverTimeLimit, a slow kill): it is expected
    to run on as long again as it is overdue by, at least OVERDUE_MIN_S, and not past its
    limit while it has one left. Never "now": a job planned to end now at every look
    makes every reservation too early, and backfilling that should happen is refused.
    The scheduler's plan never ends before the expected end."""
    left = limit - elapsed
    if elapsed < expected_run:
        return max(expected_run - elapsed, min(left, OVERDUE_MIN_S)), left
    over = elapsed - (expected_run if left > 0 else limit)
    expected = max(over, OVERDUE_MIN_S)
    if left > 0:
        expected = min(expected, max(left, OVERDUE_MIN_S))
    return expected, max(left, expected)


def _share(entry: QueueEntry, target: Target) -> Need | None:
    """What of this job weighs on the target's nodes (None: nothing).

    Partitions can share nodes (debug inside cpu). A running job counts for
    the cores it holds on the target's nodes; a waiting job of another
    partition counts only if that partition lies inside the target's nodes.
    """
    full = Need(entry.cpus, entry.gpus)
    if entry.partition == target.partition:
        return full
    if entry.state in (JobState.RUNNING, JobState.SUSPENDED):
        if not entry.node_names or not target.node_names:
            return None
        inside = sum(1 for n in entry.node_names if n in target.node_names)
        if not inside:
            return None
        share = inside / len(entry.node_names)
        return Need(round(entry.cpus * share), round(entry.gpus * share))
    return full if entry.partition in target.nested_partitions else None

