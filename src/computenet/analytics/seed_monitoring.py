"""What the monitoring saw of the synthetic year: a profile per monitored job (the application
characteristics database, table job_profiles) and the findings the live rules raise on it.

Which jobs: the sampling agent rides in every platform batch script (services/jobs), and, as
services/monitoring.record_profile does, only jobs that COMPLETED get a profile: about 88 % of
the year (seed_calibration.STATES). Failed, cancelled and timed-out runs are not typical runs.

What they used is drawn per application from its own stream (same seed, same numbers; the
rest of the year does not move), with the distributions below. The findings and their money
come from monitoring/rules.py's ``diagnose`` on those figures, the facts priced as
services/monitoring.facts_of prices them (monitoring.efficiency.price_parts), so the waste is
what the rules would have said of what each job was charged. The seeded scripts launch their
program with srun, so, as on a live Slurm cluster, the agent sees only the batch shell and
Slurm's step accounting gives the CPU total: the rules run in the "cpu_total" view (idle cores,
idle and under-used GPUs, time limits, short jobs; no idle-job, single-thread or memory rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ..monitoring.efficiency import Efficiency, JobFacts, price_parts
from ..monitoring.infer import profile_key
from ..monitoring.rules import diagnose
from ..monitoring.series import JobSeries
from .seed_money import MICRO, PRODUCT_LINES
from .seed_tables import APPS, SeedTables, script_for

STREAM = 215  # the monitoring's own random stream (issue 21, item 5), apart from the year's
MIB = 1024 * 1024
_NO_SAMPLES = JobSeries((), 1.0)  # the agent's view is partial (srun): the rules read the figures alone


@dataclass(frozen=True)
class AppUse:
    """How an application's completed runs use what they are given (shares of the allocation)."""

    cpu: float  # mean CPU efficiency of a run that worked as meant (Beta, concentration CONCENTRATION)
    idle: float  # share of runs that did nearly nothing (waiting on a licence, input, a hung rank)
    serial: float  # share of runs that kept one core busy of many (a serial pre- or post-step, no MPI)
    memory: float  # median peak RSS / memory allocated (lognormal, MEMORY_SIGMA)
    gpu: float | None = None  # mean GPU utilisation of a working run (Beta, concentration CONCENTRATION)


# Sources and reasoning. CPU: seff-style studies of whole clusters report job-averaged CPU
# efficiency near 60 % and memory efficiency near 19 % (King's College London CREATE, 2.9 M jobs,
# 2025; XDMoD SUPReMM's job efficiency shows the same shape: most core-hours in well-scaled MPI
# runs at 80-95 %, a long low tail of serial and idle runs). Well-scaled MPI codes (VASP,
# GROMACS, LAMMPS, CP2K) sit at the top; OpenFOAM and commercial CFD a little lower; Abaqus's
# implicit solver scales poorly and runs serial pre/post steps. A few per cent of runs are nearly
# idle. GPU: Microsoft's Philly trace (Jeon et al., ATC'19) finds training jobs' GPUs idle between
# a quarter and half of the time; inference and development mixes are far lower (Alibaba PAI,
# Weng et al., NSDI'22: most instances under 10 %); large-model fine-tuning keeps cards busiest.
# AI jobs hold 8 cores per card for data loading, busy well under half the time. Memory: HPC
# codes peak far below the 4 GB a core comes with (GROMACS and LAMMPS at a few per cent).
USE = {
    "vasp": AppUse(cpu=0.92, idle=0.02, serial=0.02, memory=0.30),
    "gromacs": AppUse(cpu=0.91, idle=0.02, serial=0.03, memory=0.05),
    "lammps": AppUse(cpu=0.88, idle=0.02, serial=0.04, memory=0.08),
    "wrf": AppUse(cpu=0.86, idle=0.02, serial=0.03, memory=0.20),
    "cp2k": AppUse(cpu=0.89, idle=0.02, serial=0.03, memory=0.25),
    "openfoam": AppUse(cpu=0.80, idle=0.03, serial=0.06, memory=0.20),
    "fluent": AppUse(cpu=0.83, idle=0.04, serial=0.04, memory=0.25),  # idle: waiting on the licence server
    "abaqus": AppUse(cpu=0.62, idle=0.04, serial=0.10, memory=0.40),
    "starccm": AppUse(cpu=0.85, idle=0.04, serial=0.04, memory=0.25),
    "lsdyna": AppUse(cpu=0.80, idle=0.04, serial=0.05, memory=0.15),
    "pytorch-train": AppUse(cpu=0.35, idle=0.05, serial=0.0, memory=0.30, gpu=0.60),
    "llm-finetune": AppUse(cpu=0.30, idle=0.03, serial=0.0, memory=0.45, gpu=0.72),
    "inference": AppUse(cpu=0.25, idle=0.08, serial=0.0, memory=0.25, gpu=0.30),
    "diffusion": AppUse(cpu=0.35, idle=0.04, serial=0.0, memory=0.30, gpu=0.65),
}
CONCENTRATION = 8.0  # Beta(mean x 8, (1 - mean) x 8): a sd of about 0.1 at a mean of 0.88, a low tail
MEMORY_SIGMA = 0.8
IDLE_AT_MOST = 0.02  # a nearly idle run's CPU efficiency and GPU utilisation lie in [0, this)


def app_names(data: SeedTables) -> np.ndarray:
    """Each job's application (as seed_text names the job)."""
    line, index = data.extra["job_line"], data.extra["app_index"]
    out = np.empty(len(line), dtype=object)
    for k, name in enumerate(PRODUCT_LINES):
        apps = APPS[name]
        mine = line == k
        out[mine] = np.asarray(apps, dtype=object)[index[mine] % len(apps)]
    return out


def draw_use(rng: np.random.Generator, app: np.ndarray, cores: np.ndarray, gpus: np.ndarray) -> dict:
    """CPU efficiency, GPU utilisation (NaN without cards) and peak memory share of every job."""
    n = len(app)
    params = {field: np.asarray([getattr(USE[a], field) or 0.0 for a in app], dtype=np.float64)
              for field in ("cpu", "idle", "serial", "memory", "gpu")}
    kind = rng.random(n)
    idle = kind < params["idle"]
    serial = ~idle & (kind < params["idle"] + params["serial"]) & (cores >= 2)
    cpu = rng.beta(params["cpu"] * CONCENTRATION, (1 - params["cpu"]) * CONCENTRATION)
    cpu = np.where(serial, rng.uniform(0.85, 1.0, n) / np.maximum(cores, 1), cpu)
    cpu = np.where(idle, rng.uniform(0, IDLE_AT_MOST, n), cpu)
    has_gpu = gpus > 0
    mean_gpu = np.where(has_gpu, params["gpu"], 0.5)
    gpu = rng.beta(mean_gpu * CONCENTRATION, (1 - mean_gpu) * CONCENTRATION)
    gpu = np.where(idle, rng.uniform(0, IDLE_AT_MOST, n), gpu)  # a run that did nothing left its cards idle
    gpu = np.where(has_gpu, gpu, np.nan)
    memory = np.minimum(params["memory"] * np.exp(rng.normal(0, MEMORY_SIGMA, n)), 0.98)
    return {"cpu": cpu, "gpu": gpu, "memory": np.maximum(memory, 0.001)}


def profiles(data: SeedTables, seed: int) -> tuple[dict, tuple[str, ...]]:
    """The job_profiles table (stored form: local ids, cents, epoch seconds) and its time columns."""
    rng = np.random.default_rng([seed, STREAM])
    jobs, charges, usage = data.columns["jobs"], data.columns["charges"], data.columns["usage_records"]
    app = app_names(data)
    use = {k: np.round(v, 6) for k, v in draw_use(rng, app, jobs["cores"], jobs["gpus"]).items()}  # as stored
    rows = np.flatnonzero(np.asarray(jobs["state"]) == "COMPLETED")
    keys = {name: profile_key(None, script_for(name), name) for name in USE}
    mem_bytes = usage["mem_mb"] * MIB
    peak = np.floor(use["memory"] * mem_bytes).astype(np.int64)
    runtime = (jobs["end_time"] - jobs["start_time"]).astype(np.float64)
    gpu_type = usage["gpu_type"]
    price_cents, wasted_cents, findings = [], [], []
    for j in rows.tolist():
        price = Decimal(int(charges["amount"][j])) / 100
        core_value = Decimal(int(charges["price_core_hour"][j])) / MICRO * int(charges["core_seconds"][j])
        gpu_value = Decimal(int(charges["price_gpu_hour"][j])) / MICRO * int(charges["gpu_seconds"][j])
        cpu_part, gpu_part = price_parts(price, core_value, gpu_value)
        cores, gpus, seconds = int(jobs["cores"][j]), int(jobs["gpus"][j]), float(runtime[j])
        facts = JobFacts(job_id=str(j + 1), cores=cores, gpus=gpus, gpu_type=gpu_type[j],
                         mem_requested_bytes=int(mem_bytes[j]), time_limit_s=int(jobs["time_limit_minutes"][j]) * 60,
                         runtime_s=seconds, price=price, price_cpu_part=cpu_part, price_gpu_part=gpu_part,
                         app=None, user=str(jobs["owner_id"][j]), cluster=str(jobs["cluster_id"][j]),
                         started_at=float(jobs["start_time"][j]))
        e = float(use["cpu"][j])
        u = None if np.isnan(use["gpu"][j]) else float(use["gpu"][j])
        eff = Efficiency(
            cpu_efficiency=e, mem_efficiency=int(peak[j]) / facts.mem_requested_bytes if facts.mem_requested_bytes
            else None, gpu_utilisation=u, gpu_mem_peak_fraction=None,
            time_limit_efficiency=seconds / facts.time_limit_s if facts.time_limit_s else None,
            io_bytes_per_core_hour=None, covered_fraction=1.0, gaps=0, cpu_seconds=e * cores * seconds,
            mean_cores=e * cores, idle_fraction=1.0 if e < IDLE_AT_MOST else 0.0, peak_rss=int(peak[j]),
            peak_gpu_mem=0, gpu_mem_total=0)
        found = diagnose(facts, _NO_SAMPLES, eff=eff, view="cpu_total")
        wasted = sum((f.wasted for f in found), Decimal(0))
        price_cents.append(int(charges["amount"][j]))
        wasted_cents.append(int(wasted * 100))
        findings.append([{"code": f.code, "wasted": str(f.wasted)} for f in found])
    table = dict(
        job_id=rows + 1, app=[keys[a] for a in app[rows]], user_id=jobs["owner_id"][rows],
        cluster_id=jobs["cluster_id"][rows], cores=jobs["cores"][rows], gpus=jobs["gpus"][rows],
        runtime_s=runtime[rows], time_limit_s=jobs["time_limit_minutes"][rows] * 60,
        cpu_efficiency=use["cpu"][rows], peak_rss=peak[rows],
        gpu_utilisation=[None if np.isnan(v) else float(v) for v in use["gpu"][rows]],
        price=np.asarray(price_cents, dtype=np.int64), wasted=np.asarray(wasted_cents, dtype=np.int64),
        finished_at=jobs["end_time"][rows], mem_requested_bytes=mem_bytes[rows], findings=findings)
    return table, ("finished_at",)
