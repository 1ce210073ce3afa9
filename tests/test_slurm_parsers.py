"""Golden tests: the pure parsers on output captured from the real 22.05 test bed.

The fixtures (tests/fixtures/slurm, see its README) hold argv, stdout,
stderr and exit code of each command exactly as Slurm printed them.
"""

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from computenet.clusters.base import ClusterError, SubmitRejected
from computenet.clusters.slurm import commands, parsers
from computenet.clusters.slurm.adapter import SlurmCluster
from computenet.clusters.slurm.transport import CommandResult
from computenet.domain.states import JobState

FIX = Path(__file__).parent / "fixtures" / "slurm"
UTC = timezone.utc


def fixture(name):
    return {
        "argv": json.loads((FIX / f"{name}.argv.json").read_text()),
        "stdout": (FIX / f"{name}.stdout").read_text(),
        "stderr": (FIX / f"{name}.stderr").read_text(),
        "rc": int((FIX / f"{name}.rc").read_text()),
    }


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)  # the test bed runs in UTC


def test_our_argv_builders_are_what_was_captured():
    squeue = fixture("squeue_beta_gpu")["argv"]
    assert commands.squeue_argv(["1"]) == squeue
    # captured before the platform's tag moved to the wckey (the user's --comment stays theirs), and
    # before sacct was asked for every run of a requeued job (--duplicates) and where it ran (NodeList)
    def with_wckey(argv):
        argv = [a.replace(",Comment,JobName", ",Comment,WCKey,NodeList,JobName") for a in argv]
        return argv[:argv.index("--allusers") + 1] + ["--duplicates"] + argv[argv.index("--allusers") + 1:]

    sacct = fixture("sacct_beta_jobs")["argv"]
    assert commands.sacct_argv(None, ["1", "2"]) == with_wckey(sacct)
    window = fixture("sacct_alpha_starttime")["argv"]
    assert commands.sacct_argv(at("2026-11-22T03:01:42"), tz=UTC) == with_wckey(window)
    assert commands.sinfo_argv() == fixture("sinfo_alpha")["argv"]
    assert commands.scontrol_ping_argv() == fixture("scontrol_ping")["argv"]


def test_sbatch_ok_and_cluster_suffix():
    f = fixture("sbatch_ok")
    assert f["rc"] == 0 and parsers.parse_sbatch(f["stdout"]) == f["stdout"].strip()
    assert parsers.parse_sbatch("42;beta\n") == "42"
    with pytest.raises(ClusterError):
        parsers.parse_sbatch("")
    with pytest.raises(ClusterError):
        parsers.parse_sbatch("Submitted batch job 5\n")


@pytest.mark.parametrize("name,fragment", [
    ("sbatch_invalid_partition", "Invalid partition name specified"),
    ("sbatch_invalid_gres", "Requested node configuration is not available"),
])
def test_sbatch_refusals_are_the_users_problem(name, fragment):
    f = fixture(name)
    assert f["rc"] == 1 and f["stdout"] == ""
    error = parsers.sbatch_error(f["stderr"])
    assert isinstance(error, SubmitRejected) and fragment in str(error)


def test_sbatch_unreachable_is_the_clusters_problem():
    error = parsers.sbatch_error("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n")
    assert isinstance(error, ClusterError) and not isinstance(error, SubmitRejected)


def test_sbatch_accepts_what_can_never_run():
    """Slurm queues -c 1000 and an over-limit --time with exit 0: we must check first."""
    assert fixture("sbatch_too_many_cpus")["rc"] == 0
    assert fixture("sbatch_time_over_partition_max")["rc"] == 0
    rows = {r.native_id: r for r in parsers.parse_squeue(fixture("squeue_alpha_mixed")["stdout"], UTC)}
    assert rows["4"].reason == "PartitionConfig" and rows["11"].reason == "PartitionTimeLimit"


def test_squeue_mixed_states():
    f = fixture("squeue_alpha_mixed")
    rows = {r.native_id: r for r in parsers.parse_squeue(f["stdout"], UTC)}
    assert rows["1"].state is JobState.COMPLETED and rows["1"].end == at("2026-11-22T03:01:45")
    assert rows["2"].state is JobState.FAILED and rows["2"].reason == "NonZeroExitCode"
    assert rows["6"].state is JobState.RUNNING and rows["6"].start == at("2026-11-22T03:01:51")
    assert rows["6"].end is None  # %e of a running job is the expected end, not a fact
    assert rows["8"].state is JobState.PENDING and rows["8"].reason == "Priority" and rows["8"].start is None
    # cancelled while pending: no nodes, so it never started
    assert rows["10"].state is JobState.CANCELLED and rows["10"].start is None
    # array: pending tasks folded as 7_[2-3], running ones one per line
    assert rows["7_[2-3]"].state is JobState.PENDING and rows["7_0"].state is JobState.RUNNING
    assert {parsers.base_job_id(i) for i in rows} == {"1", "2", "4", "5", "6", "7", "8", "9", "10", "11"}


def _adapter_with(outputs):
    """The real adapter over a transport that replays captured output."""

    class Replay:
        def __init__(self):
            self.calls = []

        def run(self, argv, stdin=None, timeout=60):
            self.calls.append(list(argv))
            for prefix, f in outputs:
                if argv[0] == prefix[0] and all(p in argv for p in prefix[1:]):
                    return CommandResult(tuple(argv), f["rc"], f["stdout"], f["stderr"], 0.01)
            raise AssertionError(f"unexpected command {argv}")

    transport = Replay()
    return SlurmCluster("alpha", transport, tz=UTC), transport


def test_status_folds_arrays_and_asks_sacct_for_the_rest():
    adapter, transport = _adapter_with([(["squeue"], fixture("squeue_alpha_mixed")),
                                        (["sacct"], fixture("sacct_unknown_id"))])
    statuses = adapter.status(["6", "7", "999999"])
    assert statuses["6"].state is JobState.RUNNING
    assert statuses["7"].state is JobState.RUNNING  # two tasks run, two pend
    assert statuses["7"].start == at("2026-11-22T03:01:54")
    assert statuses["999999"].state is JobState.UNKNOWN
    assert [c[0] for c in transport.calls] == ["squeue", "sacct"]  # one call each, for all ids


def test_status_when_squeue_knows_none_of_the_ids():
    adapter, _ = _adapter_with([(["squeue"], fixture("squeue_unknown_id")), (["sacct"], fixture("sacct_beta_jobs"))])
    statuses = adapter.status(["1", "2"])
    assert statuses["1"].state is JobState.COMPLETED and statuses["1"].exit_code == 0
    assert statuses["2"].state is JobState.COMPLETED


def test_stale_sacct_row_is_not_a_state():
    """sacct shows a just-finished job as PENDING 'allocation' for seconds."""
    adapter, _ = _adapter_with([(["squeue"], fixture("squeue_unknown_id")),
                                (["sacct"], fixture("sacct_transient_allocation"))])
    assert adapter.status(["2"])["2"].state is JobState.UNKNOWN
    (stub,) = parsers.parse_sacct(fixture("sacct_transient_allocation")["stdout"], "beta", UTC)
    assert stub.job_name == "allocation" and not stub.is_complete and not stub.is_final
    # even a stub already in a final state is not a record to charge
    from dataclasses import replace
    assert not replace(stub, state=JobState.COMPLETED, end=stub.submit).is_final


def test_sacct_rows():
    f = fixture("sacct_alpha_starttime")
    rows = {r.record_id: r for r in parsers.parse_sacct(f["stdout"], "alpha", UTC)}
    done = rows["1"]
    assert (done.state, done.exit_code, done.cpus, done.mem_mb, done.nodes) == (JobState.COMPLETED, 0, 1, 256, 1)
    assert done.comment == "computenet:1" and done.job_name == "hello" and done.is_final
    assert rows["2"].state is JobState.FAILED and rows["2"].exit_code == 3
    timeout = rows["5"]
    assert timeout.state is JobState.TIMEOUT and timeout.elapsed_seconds == 84 and timeout.time_limit_minutes == 1
    cancelled = rows["6"]
    assert cancelled.state is JobState.CANCELLED and cancelled.raw_state == "CANCELLED by 0"
    assert cancelled.cpus == 31 and cancelled.mem_mb == 7936 and cancelled.elapsed_seconds == 3
    # cancelled while pending: nothing allocated, nothing to charge
    assert rows["10"].cpus == 0 and rows["10"].elapsed_seconds == 0
    pending = rows["4"]
    assert pending.state is JobState.PENDING and pending.start is None and not pending.is_final
    # array tasks: own record ids, one native id; the last task keeps the master id
    tasks = [r for r in rows.values() if r.native_id == "7"]
    assert sorted(r.record_id for r in tasks) == ["12", "13", "14", "7"]
    assert all(r.cpus == 16 and r.mem_mb == 4096 and r.elapsed_seconds == 20 for r in tasks)


def test_sacct_gpu_job_is_accounted_in_gpus():
    rows = {r.record_id: r for r in parsers.parse_sacct(fixture("sacct_beta_jobs")["stdout"], "beta", UTC)}
    gpu = rows["1"]
    assert (gpu.gpus, gpu.gpu_type, gpu.cpus, gpu.elapsed_seconds) == (2, "a100", 2, 60)
    assert gpu.partition == "gpu" and gpu.cluster == "beta"
    assert rows["2"].gpus == 0


def test_sacct_unknown_id_is_empty():
    f = fixture("sacct_unknown_id")
    assert f["rc"] == 0 and parsers.parse_sacct(f["stdout"], "alpha", UTC) == []


def test_sinfo_partitions():
    alpha = {p.name: p for p in parsers.parse_sinfo(fixture("sinfo_alpha")["stdout"])}
    assert set(alpha) == {"cpu", "debug"}
    assert (alpha["cpu"].nodes, alpha["cpu"].cores_per_node, alpha["cpu"].mem_per_node_mb) == (2, 32, 64000)
    assert alpha["cpu"].is_default and not alpha["debug"].is_default
    assert alpha["cpu"].max_time_minutes == 2880 and alpha["cpu"].default_time_minutes == 60
    assert alpha["debug"].max_time_minutes == 30 and alpha["debug"].nodes == 1
    assert alpha["cpu"].gpus_per_node == 0 and alpha["cpu"].features == ("cpu", "skylake")
    beta = {p.name: p for p in parsers.parse_sinfo(fixture("sinfo_beta")["stdout"])}
    gpu = beta["gpu"]
    assert (gpu.nodes, gpu.cores_per_node, gpu.gpus_per_node, gpu.gpu_type, gpu.total_gpus) == (2, 32, 4, "a100", 8)
    assert beta["cpu"].cores_per_node == 16


def test_scontrol_oneliner_and_ping():
    parts = parsers.parse_scontrol_oneliner(fixture("scontrol_show_partition_beta")["stdout"])
    gpu = next(p for p in parts if p["PartitionName"] == "gpu")
    assert gpu["MaxTime"] == "2-00:00:00" and gpu["TotalNodes"] == "2" and "gres/gpu=8" in gpu["TRES"]
    up, detail = parsers.parse_scontrol_ping(fixture("scontrol_ping")["stdout"])
    assert up and "is UP" in detail
    assert parsers.parse_scontrol_ping("Slurmctld(primary) at vm is DOWN\n")[0] is False


def test_scancel_exits_zero_even_for_unknown_ids():
    """So cancel() cannot tell: the poller settles such jobs from accounting."""
    for name in ("scancel_unknown", "scancel_completed", "scancel_running"):
        assert fixture(name)["rc"] == 0


@pytest.mark.parametrize("text,expected", [
    ("0:0", (0, 0)), ("3:0", (3, 0)), ("0:15", (0, 15)), ("", (None, None)),
])
def test_exit_codes(text, expected):
    assert parsers.parse_exit_code(text) == expected


def test_tres_memory_units():
    assert parsers.tres_memory_mb("256M") == 256 and parsers.tres_memory_mb("4G") == 4096
    assert parsers.tres_memory_mb("500G") == 512000 and parsers.tres_memory_mb("1.5T") == 1572864
    with pytest.raises(ClusterError):
        parsers.tres_memory_mb("lots")


def test_job_names_with_the_separator_survive():
    line = "\x1f".join(["5", "5", "alpha", "cpu", "a", "u", "COMPLETED", "0:0", "2026-11-22T03:01:43",
                        "2026-11-22T03:01:45", "2026-11-22T03:01:46", "1", "cpu=1,mem=1M,node=1", "1", "1", "5",
                        "", "computenet:5", "alpha-n[1-2]", "odd\x1fname"])
    (row,) = parsers.parse_sacct(line + "\n", "alpha", UTC)
    assert row.job_name == "odd\x1fname" and row.comment == "computenet:5" and row.node_list == "alpha-n[1-2]"


def test_the_tag_is_read_from_the_wckey_and_from_old_comments():
    base = ["5", "5", "alpha", "cpu", "a", "u", "COMPLETED", "0:0", "2026-11-22T03:01:43",
            "2026-11-22T03:01:45", "2026-11-22T03:01:46", "1", "cpu=1,mem=1M,node=1", "1", "1", "5"]
    new = "\x1f".join(base + ["the user's own", "computenet:9", "n"])
    old = "\x1f".join(base + ["computenet:8", "n"])  # a row in the format read before the wckey was
    assert [r.comment for r in parsers.parse_sacct(new + "\n" + old + "\n", "alpha", UTC)] == [
        "computenet:9", "computenet:8"]


def test_truncated_output_is_an_error_not_a_guess():
    with pytest.raises(ClusterError):
        parsers.parse_sacct("1\x1f1\x1falpha\n", "alpha", UTC)
    with pytest.raises(ClusterError):
        parsers.parse_slurm_time("yesterday", UTC)


def test_sbatch_argv_is_explicit_and_never_a_shell_string():
    from computenet.clusters.base import SubmitRequest
    from computenet.domain.sbatch import parse_submission

    text, spec, args = parse_submission(
        "#!/bin/bash\n#SBATCH -N 2 -n 4 -c 8 --mem-per-cpu=2G --gres=gpu:a100:2 -t 1-00:00:00 --array=0-3%2\n"
        "#SBATCH --mail-type=END --exclusive -C skylake\ntrue\n",
        ["-p", "gpu", "--comment=mine", "-w", "n[1-2]", "--exclusive=user", "--", "$(reboot)"])
    spec = spec.model_copy(update={"resources": spec.resources.model_copy(update={"time_limit_minutes": 1440})})
    request = SubmitRequest(script=text, spec=spec, job_name="a; rm -rf / `x`", workdir="/w/u/jobs/1",
                            output="/w/u/jobs/1/o %j.txt", error="/w/u/jobs/1/e.txt", comment="computenet:1",
                            script_args=tuple(args), dependency="afterok:5")
    argv = commands.sbatch_argv(request)
    assert argv[:2] == ["sbatch", "--parsable"]
    # what the platform decides, then the user's command-line options as written
    for expected in ("--job-name=a; rm -rf / `x`", "--chdir=/w/u/jobs/1", "--output=/w/u/jobs/1/o %j.txt",
                     "--time=1-00:00:00", "--dependency=afterok:5", "--partition=gpu", "--wckey=computenet:1",
                     "--comment=mine", "--nodelist=n[1-2]", "--exclusive=user"):
        assert expected in argv
    # the script's own lines are sbatch's to read: never restated (they would override nothing
    # and, as the platform's guesses, used to pin -N and add --cpus-per-task)
    assert not any(a.startswith(("--nodes", "--ntasks", "--cpus-per-task", "--gres", "--mem", "--array",
                                 "--mail-type", "--constraint")) for a in argv)
    assert argv[-2:] == ["/dev/stdin", "$(reboot)"]  # script on stdin, its argument as one argv item


def test_sbatch_names_slurms_cluster_only_when_the_script_itself_names_one():
    """sbatch reads a script's own -M (the platform's name for the cluster), so the command line must
    override it with Slurm's; without one, --clusters is left out: it makes sbatch ask slurmdbd first,
    and a submission must not fail while slurmdbd is down (seen on the test bed)."""
    from computenet.clusters.base import SubmitRequest
    from computenet.domain.sbatch import parse_submission

    def argv(script: str, flags: list[str]) -> list[str]:
        text, spec, _ = parse_submission(script, flags)
        return commands.sbatch_argv(SubmitRequest(script=text, spec=spec, job_name="j", workdir="/w", output="/w/o",
                                                  error="/w/e", comment="computenet:3"), "alpha-slurm")

    assert "--clusters=alpha-slurm" in argv("#!/bin/bash\n#SBATCH -M alpha -t 5\ntrue\n", [])
    assert "--clusters=alpha-slurm" in argv("#!/bin/bash\n#SBATCH --clusters=alpha\ntrue\n", [])
    assert not any(a.startswith("--clusters") for a in argv("#!/bin/bash\n#SBATCH -t 5\ntrue\n", ["-M", "alpha"]))


def test_sbatch_argv_of_a_job_stored_before_options_were_kept_as_written():
    from computenet.clusters.base import SubmitRequest
    from computenet.domain.resources import JobOptions, JobSpec, ResourceRequest

    spec = JobSpec(resources=ResourceRequest(nodes=2, cpus_per_task=4, gpus_per_node=2, time_limit_minutes=60),
                   options=JobOptions(passthrough=("--mail-type=END", "--comment=x")))
    request = SubmitRequest(script="#!/bin/sh\n", spec=spec, job_name="j", workdir="/w", output="/w/o",
                            error="/w/o", comment="computenet:2")
    argv = commands.sbatch_argv(request)
    for expected in ("--nodes=2", "--cpus-per-task=4", "--gres=gpu:2", "--mail-type=END", "--wckey=computenet:2"):
        assert expected in argv
    # the user's comment is theirs (the tag is in the wckey); the tag took the comment's place before
    assert "--comment=x" in argv and "--ntasks" not in " ".join(argv)
    tagged = commands.sbatch_argv(request, job_tag="comment")
    assert "--comment=computenet:2 x" in tagged and not any(a.startswith(("--wckey", "--comment=x")) for a in tagged)


def test_sacctmgr_account_limits():
    assert parsers.parse_account_limits(fixture("sacctmgr_limits_blocked")["stdout"]) == {"labx": True,
                                                                                          "research": False}
    assert parsers.parse_account_limits(fixture("sacctmgr_limits_unblocked")["stdout"]) == {"labx": False}
    assert parsers.parse_account_limits(fixture("sacctmgr_limits_unknown")["stdout"]) == {}
    with pytest.raises(ClusterError):
        parsers.parse_account_limits("labx|0\n")
    assert commands.sacctmgr_block_argv("alpha", "labx", True) == fixture("sacctmgr_block")["argv"]
    assert commands.sacctmgr_block_argv("alpha", "labx", False) == fixture("sacctmgr_unblock")["argv"]
    assert commands.sacctmgr_limits_argv("alpha", ["labx", "research"]) == fixture("sacctmgr_limits_blocked")["argv"]


def test_blocking_an_account_slurm_lacks_is_an_error():
    adapter, _ = _adapter_with([(["sacctmgr", "modify"], fixture("sacctmgr_block_unknown")),
                                (["sacctmgr", "show"], fixture("sacctmgr_limits_unknown"))])
    with pytest.raises(ClusterError) as err:
        adapter.set_account_blocked("nosuchacct", True)
    assert "missing" in str(err.value)
    adapter, _ = _adapter_with([(["sacctmgr", "modify"], fixture("sacctmgr_block_again")),
                                (["sacctmgr", "show"], fixture("sacctmgr_limits_blocked"))])
    adapter.set_account_blocked("labx", True)  # already blocked: fine
