"""GPU replay of the Alibaba openb trace: router vs best-fit vs random placement.

    .venv/bin/python bench/gpu_replay.py [--traces DIR] [--seeds 5] [--load 1.3]

File order, then --seeds shuffled orders (the FGD paper samples its arrival order);
prints a markdown table: allocation when the first GPU pod fails, fragmentation as
70 % and 90 % of the GPU capacity has arrived, and allocation at the end (saturation).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from computenet.sim.gpu_replay import POLICIES, read_nodes, read_pods, replay

HERE = Path(__file__).resolve().parents[1]


def at(curve, arrived: float):
    return next((p for p in curve if p.arrived >= arrived - 1e-9), None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=Path, default=HERE.parent / "shared" / "traces")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--load", type=float, default=1.3)
    args = ap.parse_args()
    nodes = read_nodes(args.traces / "alibaba-gpu-v2023-openb_node_list_all_node.csv")
    pods = read_pods(args.traces / "alibaba-gpu-v2023-openb_pod_list_default.csv")
    print(f"{len(pods)} pods, {len(nodes)} nodes, {sum(n.gpus for n in nodes)} GPUs, load {args.load}\n")
    print("| order | policy | allocated at first GPU failure | fragmentation at 70 % / 90 % arrived | "
          "allocated at the end | failed pods GPU / CPU | CPU allocated | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    orders = [None] + list(range(1, args.seeds + 1))
    summary: dict[str, list] = {p: [] for p in POLICIES}
    for order in orders:
        for policy in POLICIES:
            t = time.perf_counter()
            r = replay(nodes, pods, policy, load=args.load, shuffle_seed=order)
            took = time.perf_counter() - t
            f70, f90 = at(r.curve, 0.7), at(r.curve, 0.9)
            first = r.first_failure.allocated if r.first_failure else 1.0
            if order is not None:
                summary[policy].append((first, f70.fragmentation, f90.fragmentation, r.final.allocated))
            label = "file" if order is None else f"shuffle {order}"
            print(f"| {label} | {policy} | {first * 100:.1f} % | {f70.fragmentation * 100:.1f} % / "
                  f"{f90.fragmentation * 100:.1f} % | {r.final.allocated * 100:.1f} % | "
                  f"{r.failed_gpu_pods} / {r.failed_cpu_pods} | {r.cpu_allocated * 100:.1f} % | {took:.1f} |",
                  flush=True)
    if args.seeds:
        print(f"\nMean over the {args.seeds} shuffled orders:\n")
        print("| policy | allocated at first GPU failure | fragmentation at 70 % / 90 % arrived "
              "| allocated at the end |")
        print("|---|---:|---:|---:|")
        for policy, rows in summary.items():
            m = [statistics.mean(x[i] for x in rows) * 100 for i in range(4)]
            print(f"| {policy} | {m[0]:.1f} % | {m[1]:.1f} % / {m[2]:.1f} % | {m[3]:.1f} % |")


if __name__ == "__main__":
    main()
