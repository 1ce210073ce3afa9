"""Cost of capacity: what a cluster costs the operator over a bucket of time.

Owned capacity costs every hour whether used or not (that is why low
utilization of owned compute pulls the margin down): its nodes x hours x
the cost of a node-hour = purchase price / (depreciation years x 8,760 h)
+ average watts / 1000 x PUE x price per kWh + other opex per node-hour.
An owned cluster without those settings falls back to its cost_core_hour /
cost_gpu_hour times its capacity (the simulator's model). Leased (and
partner) capacity is paid per use: used core-hours x cost_core_hour + used
card-hours x cost_gpu_hour. A cluster whose costs are not configured has an
undefined cost (and margin), with the reason: never a zero.

Capacity is the cluster's distinct nodes (partitions may share nodes, named
in partitions.node_names); a node shared by partitions of several product
lines is split evenly between them when owned cost is allocated to lines.
Partitions as they are now stand for the whole period (no history is kept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal

from ..config import OWNED_COST_FIELDS, Settings
from ..domain.money import round_money
from ..store.types import Money, Rate

HOURS_PER_YEAR = Decimal(8760)
COST_COLUMNS = OWNED_COST_FIELDS  # stored on the clusters table under the same names


# the warehouse keeps columns in their stored form; the store's own types read and write them
_RATE, _MONEY = Rate(), Money()


def rate(stored: int | None) -> Decimal | None:
    """A Rate column's stored millionths as a Decimal."""
    return _RATE.process_result_value(stored, None)


def cents_to_money(stored: int | None) -> Decimal | None:
    return _MONEY.process_result_value(stored, None)


@dataclass
class Node:
    cores: int
    gpus: int
    lines: set[str] = field(default_factory=set)


@dataclass
class Cost:
    amount: Decimal | None  # None: undefined, see reason
    by_line: dict[str, Decimal] = field(default_factory=dict)
    reason: str | None = None
    basis: str = ""


@dataclass
class ClusterModel:
    id: int
    name: str
    ownership: str
    nodes: dict[str, Node]
    row: dict  # the clusters row, cost columns as stored

    @property
    def cores(self) -> int:
        return sum(n.cores for n in self.nodes.values())

    @property
    def gpus(self) -> int:
        return sum(n.gpus for n in self.nodes.values())

    @property
    def owned(self) -> bool:
        return self.ownership == "owned"

    def node_hour(self) -> tuple[Decimal | None, dict[str, Decimal]]:
        """The cost of one node-hour from the node settings, and its parts; None when none is set."""
        r = self.row
        if all(r.get(c) is None for c in COST_COLUMNS):
            return None, {}
        parts = {}
        if r.get("node_capex") is not None:
            parts["depreciation"] = cents_to_money(r["node_capex"]) / (rate(r["depreciation_years"]) * HOURS_PER_YEAR)
        if r.get("node_watts") is not None:
            pue = rate(r.get("pue")) or Decimal(1)
            parts["power"] = Decimal(int(r["node_watts"])) / 1000 * pue * rate(r["power_price_kwh"])
        if r.get("node_opex_hour") is not None:
            parts["opex"] = rate(r["node_opex_hour"])
        return sum(parts.values(), Decimal(0)), parts

    def owned_cost(self, hours: Decimal) -> Cost:
        """Capacity cost over ``hours``, allocated to product lines by the nodes they run on."""
        per_node, _ = self.node_hour()
        core_rate, gpu_rate = rate(self.row.get("cost_core_hour")), rate(self.row.get("cost_gpu_hour"))
        if per_node is None:
            if core_rate is None or (self.gpus and gpu_rate is None):
                return Cost(None, reason=f"{self.name} (owned): no cost configured (node_capex and "
                                         "depreciation_years, node_watts and power_price_kwh, node_opex_hour, "
                                         "or cost_core_hour/cost_gpu_hour)")
            basis = "capacity x cost_core_hour/cost_gpu_hour"
        else:
            basis = "nodes x node-hour cost"
        by_line: dict[str, Decimal] = {}
        total = Decimal(0)
        for node in self.nodes.values():
            hourly = per_node if per_node is not None else node.cores * core_rate + node.gpus * (gpu_rate or 0)
            amount = hourly * hours
            total += amount
            for line in node.lines:
                by_line[line] = by_line.get(line, Decimal(0)) + amount / len(node.lines)
        return Cost(round_money(total), {k: round_money(v) for k, v in by_line.items()}, basis=basis)

    def used_cost(self, core_hours: dict[str, Decimal], card_hours: dict[str, Decimal]) -> Cost:
        """What leased capacity cost for what was used (per product line)."""
        core_rate, gpu_rate = rate(self.row.get("cost_core_hour")), rate(self.row.get("cost_gpu_hour"))
        if any(core_hours.values()) and core_rate is None:
            return Cost(None, reason=f"{self.name} ({self.ownership}): core-hours used but no cost_core_hour")
        if any(card_hours.values()) and gpu_rate is None:
            return Cost(None, reason=f"{self.name} ({self.ownership}): card-hours used but no cost_gpu_hour")
        by_line = {}
        for line in set(core_hours) | set(card_hours):
            by_line[line] = (core_hours.get(line, 0) * (core_rate or 0) + card_hours.get(line, 0) * (gpu_rate or 0))
        return Cost(round_money(sum(by_line.values(), Decimal(0))), {k: round_money(v) for k, v in by_line.items()},
                    basis="used hours x cost_core_hour/cost_gpu_hour")


def _names(value) -> list[str]:
    if value is None or value == "":
        return []
    names = json.loads(value) if isinstance(value, str) else value
    return [str(n) for n in names or []]


def cluster_models(clusters: list[dict], partitions: list[dict]) -> dict[int, ClusterModel]:
    models = {c["id"]: ClusterModel(c["id"], c["name"], c.get("ownership") or "owned", {}, c) for c in clusters}
    for p in partitions:
        model = models.get(p["cluster_id"])
        if model is None:
            continue
        names = _names(p.get("node_names")) or [f"{p['name']}#{i}" for i in range(int(p["nodes"] or 0))]
        for name in names:
            node = model.nodes.setdefault(name, Node(0, 0))
            node.cores = max(node.cores, int(p["cores_per_node"] or 0))
            node.gpus = max(node.gpus, int(p["gpus_per_node"] or 0))
            node.lines.add(p["product_line"] or "hpc")
    return models


def configured_costs(settings: Settings) -> dict[str, dict[str, int | None]]:
    """The configured cost settings per cluster name, in stored form (cents, millionths)."""
    out = {}
    for cfg in settings.clusters:
        values = {"cost_core_hour": cfg.cost_core_hour, "cost_gpu_hour": cfg.cost_gpu_hour,
                  **{c: getattr(cfg, c) for c in COST_COLUMNS}}
        out[cfg.name] = {column: value if column == "node_watts" else
                         (_MONEY if column == "node_capex" else _RATE).process_bind_param(value, None)
                         for column, value in values.items()}
    return out


def apply_settings(warehouse, settings: Settings) -> None:
    """Costs set in the configuration win over the database's columns (the file is where they are set);
    a setting left out of the file keeps the database's value.

    Only for a warehouse copied from the database: its tables are its own.
    """
    for name, values in configured_costs(settings).items():
        values = {column: value for column, value in values.items() if value is not None}
        if not values:
            continue
        assignments = ", ".join(f"{column} = ?" for column in values)  # column names are our constants
        warehouse.con.execute(f"UPDATE clusters SET {assignments} WHERE name = ?", [*values.values(), name])
