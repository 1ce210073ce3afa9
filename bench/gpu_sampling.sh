#!/usr/bin/env bash
# Records the sampling agent on a real GPU (run on a GPU machine; needs python3 and, for the load,
# PyTorch or CuPy): 8 s of a busy matmul loop, then 6 s holding the GPU idle with a context open.
# The JSON lines land in $OUT (default ./gpu-samples) for tests/fixtures/monitoring/.
set -euo pipefail
OUT=${OUT:-./gpu-samples}
mkdir -p "$OUT"
AGENT=$(dirname "$0")/../src/computenet/monitoring/agent.py
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
load() {
python3 - "$1" "$2" <<'PY'
import sys, time
busy, idle = float(sys.argv[1]), float(sys.argv[2])
try:
    import torch
    a = torch.randn(8192, 8192, device="cuda"); b = torch.randn(8192, 8192, device="cuda")
    t = time.time()
    while time.time() - t < busy:
        (a @ b).sum().item()
    time.sleep(idle)
    print("torch", torch.__version__)
except ImportError:
    import cupy
    a = cupy.random.rand(8192, 8192, dtype=cupy.float32); b = cupy.random.rand(8192, 8192, dtype=cupy.float32)
    t = time.time()
    while time.time() - t < busy:
        float((a @ b).sum())
    time.sleep(idle)
    print("cupy", cupy.__version__)
PY
}
load 8 6 > "$OUT/load.txt" 2>&1 &
ROOT=$!
python3 "$AGENT" --pid "$ROOT" --interval 0.5 --out "$OUT/busy-then-idle.jsonl" --job gpu-check
wait "$ROOT" || true
cat "$OUT/load.txt"
wc -l "$OUT/busy-then-idle.jsonl"
python3 - "$OUT/busy-then-idle.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("util:", [g["util"] for r in rows for g in r["gpus"]])
print("mem GiB:", [round(g["mem_used"] / 2**30, 1) for r in rows for g in r["gpus"]])
print("cores:", [round(r["cores"], 2) for r in rows])
PY
