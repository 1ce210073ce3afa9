"""Slurm is the oracle: a script submitted through the platform gets the job plain sbatch gives it.

Each script is submitted twice on the real test bed, held: once with plain ``sbatch --hold`` (from
the platform job's own directory, pinned to the same cluster and partition), once through the
platform (``-M C -p P --hold``). ``scontrol show job`` must then agree field by field, except ids,
times, the priority (it ages), the script's path and the platform's tag (in the wckey).
"""

from __future__ import annotations

import os
import re
import subprocess
import pytest

from computenet.services.jobs.jobs import submit_job

from conftest import add_user, slurm_clusters

pytestmark = pytest.mark.slurm

IGNORED = {"JobId", "ArrayJobId", "Priority", "SubmitTime", "EligibleTime", "AccrueTime", "StartTime", "EndTime",
           "LastSchedEval", "Command", "AllocNode:Sid", "RunTime", "SuspendTime", "Deadline", "PreemptEligibleTime",
           "PreemptTime", "WCKey"}

H = "#!/bin/bash\n"
# (id, cluster, partition, directives, command-line flags)
CASES = [
    ("plain", "alpha", "cpu", "", []),
    ("cores", "alpha", "cpu", "#SBATCH -c 4\n", []),
    ("tasks-no-nodes", "alpha", "cpu", "#SBATCH -n 48\n", []),  # spreads over both nodes, as sbatch
    ("node-range", "alpha", "cpu", "#SBATCH -N 1-2 -n 4\n", []),
    ("nodes-tasks-per-node", "alpha", "cpu", "#SBATCH -N 2 --ntasks-per-node=3 -c 2\n", []),
    ("flags-override", "alpha", "cpu", "#SBATCH -c 2 -t 10\n", ["-c", "6", "-t", "20"]),
    ("mem", "alpha", "cpu", "#SBATCH --mem=2G\n", []),
    ("mem-per-cpu", "alpha", "cpu", "#SBATCH --mem-per-cpu=700M -c 3\n", []),
    ("time-minutes", "alpha", "cpu", "#SBATCH -t 90\n", []),
    ("time-m-s", "alpha", "cpu", "#SBATCH -t 5:30\n", []),
    ("time-h-m-s", "alpha", "cpu", "#SBATCH --time=1:02:03\n", []),
    ("time-d-h", "alpha", "cpu", "#SBATCH -t 1-2\n", []),
    ("time-d-h-m", "alpha", "cpu", "#SBATCH -t 1-02:30\n", []),
    ("time-d-h-m-s", "beta", "cpu", "#SBATCH -t 0-01:00:30\n", []),
    ("time-unlimited", "alpha", "cpu", "#SBATCH -t UNLIMITED\n", []),
    ("time-min", "alpha", "cpu", "#SBATCH -t 60 --time-min=20\n", []),
    ("debug-partition", "alpha", "debug", "#SBATCH -t 10\n", []),
    ("nodelist", "alpha", "cpu", "#SBATCH -w alpha-n2\n", []),
    ("exclude", "alpha", "cpu", "#SBATCH -N 1\n", ["-x", "alpha-n1"]),
    ("exclusive", "alpha", "cpu", "#SBATCH --exclusive\n", []),
    ("exclusive-user", "alpha", "cpu", "#SBATCH --exclusive=user\n", []),
    ("comment", "alpha", "cpu", "#SBATCH --comment=\"my run 3\"\n", []),
    ("comment-flag", "beta", "cpu", "", ["--comment=from the command line"]),
    ("name-output", "alpha", "cpu", "#SBATCH -J md -o md-%j.out -e md-%j.err\n", []),
    ("output-dir", "alpha", "cpu", "#SBATCH -o logs/%x-%j.out\n", []),
    ("output-J", "alpha", "cpu", "#SBATCH -o run-%J.log\n", []),
    ("output-user-node", "beta", "cpu", "#SBATCH -o out-%u-%N-%j.txt\n", []),
    ("open-mode", "alpha", "cpu", "#SBATCH --open-mode=append -o keep.log\n", []),
    ("chdir", "alpha", "cpu", "#SBATCH --chdir={space}/rundir\n", []),
    ("array", "alpha", "cpu", "#SBATCH --array=0-9\n", []),
    ("array-step-limit", "alpha", "cpu", "#SBATCH -a 1-20:3%2\n", []),
    ("array-list-output", "beta", "cpu", "#SBATCH -a 1,4,7 -o task-%A_%a.out\n", []),
    ("export-all-var", "alpha", "cpu", "#SBATCH --export=ALL,MYVAR=42\n", []),
    ("export-none", "alpha", "cpu", "#SBATCH --export=NONE\n", []),
    ("export-list", "beta", "cpu", "", ["--export=A=1,B=2"]),
    ("begin", "alpha", "cpu", "#SBATCH --begin=now+1hour\n", []),
    ("signal-mail", "alpha", "cpu", "#SBATCH --signal=B:USR1@120 --mail-type=END,FAIL --mail-user=a@b.c\n", []),
    ("requeue-nice", "alpha", "cpu", "#SBATCH --requeue --nice=10\n", []),
    ("constraint", "beta", "cpu", "#SBATCH -C skylake\n", []),
    ("qos", "alpha", "cpu", "#SBATCH -q normal\n", []),
    ("gres", "beta", "gpu", "#SBATCH --gres=gpu:2\n", []),
    ("gres-typed", "beta", "gpu", "#SBATCH --gres=gpu:a100:1 -c 4\n", []),
    ("gpus", "beta", "gpu", "#SBATCH --gpus=3\n", []),
    ("gpus-per-node", "beta", "gpu", "#SBATCH -N 2 --gpus-per-node=2\n", []),
    ("gpus-per-task", "beta", "gpu", "#SBATCH -n 2 --gpus-per-task=1\n", []),
    ("cpus-per-gpu", "beta", "gpu", "#SBATCH --gpus=2 --cpus-per-gpu=4\n", []),
    ("mem-per-gpu", "beta", "gpu", "#SBATCH --gpus=1 --mem-per-gpu=4G\n", []),
    ("gpu-exclusive", "beta", "gpu", "#SBATCH --gres=gpu:1 --exclusive\n", []),
    ("hint-distribution", "alpha", "cpu", "#SBATCH -n 4 --hint=nomultithread -m block\n", []),
    ("wckey-free-fields", "alpha", "cpu", "#SBATCH --tmp=100 --no-requeue -k\n", []),
]


@pytest.fixture
def oracle(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed))
    user_id, _ = add_user(platform, "oracle", balance="1000000.00")
    natives: list[tuple[str, str]] = []
    yield platform, user_id, natives
    for cluster, native in natives:  # held jobs: nothing ever ran
        subprocess.run(["scancel", native], env=_env(testbed, cluster), capture_output=True, check=False)


def _env(testbed, cluster: str) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": testbed[f"SLURM_CONF_{cluster.upper()}"]}


def _show(testbed, cluster: str, native: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "-o", "show", "job", native], env=_env(testbed, cluster),
                         capture_output=True, text=True, check=True).stdout.splitlines()[0]
    fields: dict[str, str] = {}
    key = None
    for word in out.split(" "):
        name, eq, value = word.partition("=")
        if eq and (name[:1].isupper() or name in ("gres",)) and "/" not in name[:1]:
            key = name
            fields[key] = value
        elif key is not None:  # a value with spaces (a comment)
            fields[key] += " " + word
    return fields


def _normal(fields: dict[str, str], native: str) -> dict[str, str]:
    ids = re.compile(rf"(?<![0-9]){native}(?![0-9])")
    return {k: ids.sub("ID", v) if k in ("StdOut", "StdErr", "StdIn") else v
            for k, v in fields.items() if k not in IGNORED}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_the_platform_gives_slurm_the_job_plain_sbatch_gives(case, oracle, testbed):
    name, cluster, partition, directives, flags = case
    platform, user_id, natives = oracle
    space = os.path.join(os.environ["COMPUTENET_TESTBED"], "work", "oracle")
    script = H + directives.replace("{space}", space) + "hostname\n"
    job = submit_job(platform, user_id, script, ["-M", cluster, "-p", partition, "--hold", *flags],
                     script_name=f"{name}.sh")
    natives.append((cluster, job.native_id))
    assert job.partition == partition
    # plain sbatch, as the user would run it from the job's directory
    os.makedirs(job.workdir, exist_ok=True)
    for directory in ("logs",):
        os.makedirs(os.path.join(job.workdir, directory), exist_ok=True)
    path = os.path.join(job.workdir, f"{name}.sh")
    with open(path, "w") as handle:
        handle.write(script)
    plain = subprocess.run(["sbatch", "--parsable", "--hold", "-M", cluster, "-p", partition, *flags, path],
                           cwd=job.workdir, env=_env(testbed, cluster), capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    native = plain.stdout.strip().split(";")[0]
    natives.append((cluster, native))
    theirs = _normal(_show(testbed, cluster, native), native)
    ours = _normal(_show(testbed, cluster, job.native_id), job.native_id)
    differ = {k: (theirs.get(k), ours.get(k)) for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)}
    assert not differ, f"{name}: (plain sbatch, platform) differ: {differ}"
