"""Golden tests for sstat (running steps' usage) on output captured from the real test bed."""

import pytest

from computenet.clusters.base import ClusterError
from computenet.clusters.slurm import commands
from computenet.clusters.slurm.parsers import ParseError
from computenet.clusters.slurm.sstat import byte_count, cpu_seconds, parse_sstat
from computenet.clusters.slurm.transport import CommandResult

from test_slurm_parsers import _adapter_with, fixture


def test_argv_is_what_was_captured():
    assert commands.sstat_argv(["2", "999999"]) == fixture("sstat_alpha_steps")["argv"]
    with pytest.raises(ValueError):
        commands.sstat_argv([])


def test_steps_of_a_running_job():
    f = fixture("sstat_alpha_steps")
    assert f["rc"] == 0 and "999999" in f["stderr"]  # the unknown id is only a complaint on stderr
    batch, srun = parse_sstat(f["stdout"])
    assert (batch.native_id, batch.step, batch.ntasks, batch.nodes) == ("2", "batch", 1, ("alpha-n1",))
    assert batch.cpu_seconds == 10 and batch.rss_bytes == 230600 * 1024  # the 200 MB bytearray is there
    assert batch.read_bytes == 1388267 and batch.write_bytes == 1079
    assert (srun.step, srun.ntasks, srun.cpu_seconds) == ("0", 2, 11)  # two busy tasks, summed
    assert srun.rss_bytes == 26792 * 1024


def test_adapter_groups_steps_by_job_and_leaves_unknown_jobs_out():
    adapter, transport = _adapter_with([(["sstat"], fixture("sstat_alpha_steps"))])
    usage = adapter.step_usage(["2", "999999"])
    assert list(usage) == ["2"] and [s.step for s in usage["2"]] == ["batch", "0"]
    assert adapter.step_usage([]) == {} and len(transport.calls) == 1  # no ids, no call


def test_adapter_failure_is_the_clusters_problem():
    class Down:
        def run(self, argv, stdin=None, timeout=60):
            return CommandResult(tuple(argv), 1, "", "sstat: error: Unable to contact slurm controller", 0.01)

    from computenet.clusters.slurm.adapter import SlurmCluster
    with pytest.raises(ClusterError, match="Unable to contact"):
        SlurmCluster("alpha", Down()).step_usage(["2"])


@pytest.mark.parametrize("text,seconds", [("00:00:26", 26), ("01:02.500", 62.5), ("1-02:03:04", 93784),
                                          ("12:00:00", 43200)])
def test_cpu_times(text, seconds):
    assert cpu_seconds(text) == seconds


@pytest.mark.parametrize("text,count", [("230576K", 230576 * 1024), ("1.5G", 1610612736), ("2768", 2768)])
def test_byte_counts(text, count):
    assert byte_count(text) == count


@pytest.mark.parametrize("line", ["2.batch|1|n1|cpu=00:00:26", "2|1|n1|cpu=00:00:26|", "2.0|x|n1|cpu=1:00|",
                                  "2.0|1|n1|cpu=soon|", "2.0|1|n1|mem=12Q|"])
def test_malformed_lines_are_refused(line):
    with pytest.raises(ParseError):
        parse_sstat(line)
