"""Job monitoring analysis: series (gaps, counters, downsampling), efficiency
ratios and diagnosis rules, on synthetic series and two recorded-style JSONL
fixtures (tests/fixtures/monitoring)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from computenet.domain.money import MoneyError
from computenet.monitoring.efficiency import JobFacts, measure
from computenet.monitoring.rules import (
    RULES,
    Finding,
    IdleCores,
    Rule,
    SmallerGpu,
    bundle_advice,
    diagnose,
)
from computenet.monitoring.downsample import downsample
from computenet.monitoring.series import GpuSample, JobSeries, Sample

FIXTURES = Path(__file__).parent / "fixtures" / "monitoring"
GiB = 1024**3
T0 = 1_718_000_000.0


# -- helpers ------------------------------------------------------------------


def make_series(cores: list[float], interval: float = 10.0, *, rss: int | list[int] = 100 * 1024**2,
                gpus: int = 0, gpu_util: int = 0, gpu_mem: int = 0, gpu_total: int = 80 * GiB,
                gpu_name: str = "NVIDIA A100-SXM4-80GB", drop: range | tuple = (), start_cpu: float = 0.0,
                cpu_override: dict[int, float] | None = None) -> JobSeries:
    """len(cores) + 1 samples ``interval`` apart; cores[i] cores are busy
    between sample i and i + 1. Samples whose index is in ``drop`` are lost
    (a gap); the first one after a lost run comes from a restarted agent
    (cores 0.0, seq from 0) but its cumulative counter still counts the gap."""
    samples = []
    cpu = start_cpu
    seq = 0
    lost_before = False
    for i in range(len(cores) + 1):
        if i > 0:
            cpu += cores[i - 1] * interval
        if i in drop:
            lost_before = True
            continue
        if lost_before:
            seq, lost_before = 0, False
        gpu_list = tuple(GpuSample(index=g, uuid=f"GPU-{g}", name=gpu_name, util=gpu_util if i else 0,
                                   mem_used=gpu_mem, mem_total=gpu_total) for g in range(gpus))
        restarted = seq == 0 and i > 0
        samples.append(Sample(
            t=T0 + i * interval, seq=seq,
            cpu_s=(cpu_override or {}).get(i, cpu),
            cores=0.0 if i == 0 or restarted else cores[i - 1],
            rss=rss[i] if isinstance(rss, list) else rss,
            read=1000 * i, write=500 * i, nproc=2, nthreads=2, gpus=gpu_list))
        seq += 1
    return JobSeries(tuple(samples), interval)


def make_facts(*, cores: int = 4, gpus: int = 0, runtime: float = 600, price: str = "4.00",
               cpu_part: str | None = None, gpu_part: str = "0", mem_part: str = "0",
               mem: int = 0, limit: int | None = None, gpu_type: str | None = None,
               cheaper_gpu_hour: str | None = None, user: str = "alice", started_at: float | None = None,
               job_id: str = "1001") -> JobFacts:
    if cpu_part is None:
        cpu_part = str(Decimal(price) - Decimal(gpu_part) - Decimal(mem_part))
    return JobFacts(
        job_id=job_id, cores=cores, gpus=gpus, gpu_type=gpu_type, mem_requested_bytes=mem,
        time_limit_s=limit, runtime_s=runtime, price=Decimal(price), price_cpu_part=Decimal(cpu_part),
        price_gpu_part=Decimal(gpu_part), app=None, user=user, cluster="alpha",
        price_mem_part=Decimal(mem_part),
        cheaper_gpu_hour=Decimal(cheaper_gpu_hour) if cheaper_gpu_hour is not None else None,
        started_at=started_at)


def by_code(findings: list[Finding]) -> dict[str, Finding]:
    codes = [f.code for f in findings]
    assert len(codes) == len(set(codes)), codes
    return {f.code: f for f in findings}


# -- CPU ----------------------------------------------------------------------


def test_busy_loop_on_four_cores_is_single_threaded_not_idle_cores():
    series = make_series([1.0] * 60)
    facts = make_facts(cores=4, price="4.00")
    eff = measure(facts, series)
    assert eff.cpu_efficiency == pytest.approx(0.25, abs=0.02)
    assert eff.mean_cores == pytest.approx(1.0)
    found = by_code(diagnose(facts, series))
    assert "single_threaded" in found and "idle_cores" not in found
    st = found["single_threaded"]
    assert st.wasted == Decimal("3.00")
    assert st.severity == "warning"
    assert "-c 1" in st.recommendation and "¥3.00" in st.recommendation
    assert st.confidence == 1.0


def test_single_threaded_supersedes_idle_cores_without_double_counting():
    series = make_series([1.0] * 60)
    facts = make_facts(cores=8, price="8.00")
    # on its own, idle_cores fires on this job (efficiency 1/8) ...
    alone = diagnose(facts, series, rules=(IdleCores(),))
    assert [f.code for f in alone] == ["idle_cores"]
    assert alone[0].wasted == Decimal("7.00")
    # ... with all rules, single_threaded takes it over: one finding, ¥7.00 once
    found = diagnose(facts, series)
    assert [f.code for f in found] == ["single_threaded"]
    assert found[0].wasted == Decimal("7.00")


def test_idle_cores_on_a_job_that_uses_a_few_of_many_cores():
    series = make_series([2.5] * 60)
    facts = make_facts(cores=16, price="16.00")
    found = by_code(diagnose(facts, series))
    assert set(found) == {"idle_cores"}
    f = found["idle_cores"]
    assert f.wasted == Decimal("13.50")  # 16.00 x (1 - 2.5/16)
    assert "-c 3" in f.recommendation  # 2.5 x 1.2 = 3
    assert "¥13.00" in f.recommendation  # 16.00 x 13/16 saved with 3 cores


def test_counter_reset_never_counts_negative_cpu():
    # the counter drops from 300 to 5 at sample 31 (a process vanished with its counters) and is
    # back at 320 at sample 32: samples 0..30 count 300, the drop counts 0, 5 -> 320 counts 315,
    # and samples 32..60 count 280
    series = make_series([1.0] * 60, cpu_override={31: 5.0})
    assert series.cpu_seconds() == pytest.approx(300 + 0 + 315 + 280)
    # a counter that really restarts from zero loses at most one interval, never goes negative
    samples = [Sample(t=T0 + 10 * i, seq=i, cpu_s=(10.0 * i if i < 5 else 10.0 * (i - 5)), cores=1.0 if i else 0.0,
                      rss=1, read=0, write=0, nproc=1, nthreads=1) for i in range(10)]
    assert JobSeries(tuple(samples), 10).cpu_seconds() == pytest.approx(40 + 0 + 40)


def test_a_sleeping_job_did_nothing_and_costs_its_whole_price():
    series = make_series([0.001] * 60)
    facts = make_facts(cores=4, price="4.00", mem=16 * GiB, mem_part="1.00")
    found = by_code(diagnose(facts, series))
    assert "idle_job" in found
    assert found["idle_job"].wasted == Decimal("4.00")
    assert found["idle_job"].severity == "critical"
    for duplicate in ("idle_cores", "single_threaded", "memory_over_requested"):
        assert duplicate not in found
    assert sum(f.wasted for f in found.values()) == Decimal("4.00")


def test_a_job_that_waits_then_computes_is_not_idle_job():
    # idle for 90 % of the time, then 4 cores busy: it did something
    series = make_series([0.0] * 54 + [4.0] * 6)
    facts = make_facts(cores=4, price="4.00")
    found = by_code(diagnose(facts, series))
    assert "idle_job" not in found
    assert found["idle_cores"].wasted == Decimal("3.60")  # 4.00 x (1 - 0.1)


def test_a_sleeping_gpu_job_with_busy_gpus_is_not_idle_job():
    series = make_series([0.001] * 60, gpus=1, gpu_util=95, gpu_mem=60 * GiB)
    facts = make_facts(cores=4, gpus=1, price="10.00", gpu_part="9.00")
    assert "idle_job" not in by_code(diagnose(facts, series))


# -- gaps ---------------------------------------------------------------------


def test_a_gap_is_unknown_time_not_zero_use():
    # 600 s at 10 s; samples 21..31 lost: nothing between t=200 and t=320
    series = make_series([2.0] * 60, drop=range(21, 32))
    assert series.gaps() == [(T0 + 200, T0 + 320)]
    assert series.covered_seconds() == pytest.approx(480)
    # the cumulative counter still tells the CPU used during the gap
    assert series.cpu_seconds() == pytest.approx(1200)
    # use over the gap is unknown, not zero: the mean stays 2 cores although the
    # first sample after the gap (a restarted agent) says 0.0
    assert series.mean_cores() == pytest.approx(2.0)
    assert series.fraction_cores_below(0.05) == 0.0

    facts = make_facts(cores=4, price="4.00")
    eff = measure(facts, series)
    assert eff.covered_fraction == pytest.approx(0.8)
    assert eff.gaps == 1
    assert eff.cpu_efficiency == pytest.approx(0.5)


def test_findings_on_a_job_with_a_gap_have_lower_confidence():
    series = make_series([1.0] * 60, drop=range(21, 32))
    found = by_code(diagnose(make_facts(cores=4), series))
    assert found["single_threaded"].confidence == pytest.approx(0.8)
    assert found["single_threaded"].confidence < 1


def test_duplicates_are_dropped_and_samples_sorted():
    series = make_series([1.0] * 10)
    shuffled = tuple(reversed(series.samples)) + series.samples[3:5]
    again = JobSeries(shuffled, 10)
    assert again.samples == series.samples
    # the same seq at another time is a restarted agent, not a duplicate
    moved = Sample(t=T0 + 200, seq=3, cpu_s=200.0, cores=1.0, rss=1, read=0, write=0, nproc=1, nthreads=1)
    assert len(JobSeries(series.samples + (moved,), 10).samples) == len(series.samples) + 1


# -- memory -------------------------------------------------------------------


def test_memory_over_requested_recommends_peak_plus_headroom():
    rss = [GiB] * 30 + [2 * GiB] + [GiB] * 30
    series = make_series([3.8] * 60, rss=rss)
    facts = make_facts(cores=4, mem=16 * GiB)
    found = by_code(diagnose(facts, series))
    f = found["memory_over_requested"]
    assert "--mem=3G" in f.recommendation  # 2 GiB x 1.2 = 2.4 -> 3G
    assert f.wasted == Decimal("0")  # the price did not depend on memory
    assert "oom_risk" not in found


def test_memory_over_requested_counts_the_memory_part_of_the_price():
    series = make_series([3.8] * 60, rss=2 * GiB)
    facts = make_facts(cores=4, price="4.00", mem=16 * GiB, mem_part="0.80")
    f = by_code(diagnose(facts, series))["memory_over_requested"]
    assert f.wasted == Decimal("0.70")  # 0.80 x (1 - 2/16)
    assert "¥0.65" in f.recommendation  # 0.80 x 13/16 saved with --mem=3G


def test_oom_risk_near_the_limit():
    series = make_series([3.8] * 60, rss=15 * GiB)
    facts = make_facts(cores=4, mem=16 * GiB)
    found = by_code(diagnose(facts, series))
    f = found["oom_risk"]
    assert f.severity == "warning"
    assert "--mem=19G" in f.recommendation  # 15 x 1.25 = 18.75 -> 19G
    assert f.wasted == Decimal("0")
    assert "memory_over_requested" not in found
    over = diagnose(facts, make_series([3.8] * 60, rss=17 * GiB))
    assert by_code(over)["oom_risk"].severity == "critical"


# -- GPUs ---------------------------------------------------------------------


def test_gpu_idle_on_four_a100s():
    series = make_series([1.0] * 60, gpus=4, gpu_util=2, gpu_mem=GiB)
    facts = make_facts(cores=1, gpus=4, price="100.00", gpu_part="90.00", gpu_type="a100")
    eff = measure(facts, series)
    assert eff.gpu_utilisation == pytest.approx(0.02)
    found = by_code(diagnose(facts, series))
    f = found["gpu_idle"]
    assert f.severity == "critical"
    assert f.wasted == Decimal("88.20")  # 90.00 x 0.98
    assert "smaller_gpu" not in found and "gpu_underused" not in found
    assert diagnose(facts, series)[0].code == "gpu_idle"  # the largest waste first


def test_gpu_idle_with_poor_coverage_is_only_a_warning():
    series = make_series([1.0] * 60, gpus=1, gpu_util=1, drop=range(10, 50))
    facts = make_facts(cores=1, gpus=1, price="10.00", gpu_part="9.00")
    f = by_code(diagnose(facts, series))["gpu_idle"]
    assert f.severity == "warning"
    assert f.confidence < 0.8


def test_gpu_underused_counts_half_the_idle_share():
    series = make_series([1.0] * 60, gpus=4, gpu_util=30, gpu_mem=60 * GiB)
    facts = make_facts(cores=1, gpus=4, price="100.00", gpu_part="90.00")
    found = by_code(diagnose(facts, series))
    assert "gpu_idle" not in found and "smaller_gpu" not in found
    f = found["gpu_underused"]
    assert f.severity == "warning"
    assert f.wasted == Decimal("31.50")  # 90 x 0.7 x 0.5


def test_smaller_gpu_for_10gb_of_80gb_at_20_percent():
    series = make_series([1.0] * 60, gpus=1, gpu_util=20, gpu_mem=10 * GiB)
    facts = make_facts(cores=1, gpus=1, price="20.00", gpu_part="18.00")
    found = by_code(diagnose(facts, series))
    f = found["smaller_gpu"]
    assert f.severity == "info"
    assert "24 GB" in f.recommendation
    assert f.wasted == Decimal("0")  # no cheaper price given
    assert "gpu_underused" in found  # 20 % is also under-used


def test_smaller_gpu_money_when_the_cheaper_card_price_is_known():
    series = make_series([1.0] * 360, gpus=2, gpu_util=20, gpu_mem=10 * GiB)  # 1 h
    facts = make_facts(cores=1, gpus=2, runtime=3600, price="20.00", gpu_part="18.00", cheaper_gpu_hour="3.00")
    f = SmallerGpu().check(facts, measure(facts, series), series)
    assert f is not None and f.wasted == Decimal("12.00")  # 18.00 - 3.00 x 2 GPU-hours
    dear = make_facts(cores=1, gpus=2, runtime=3600, price="20.00", gpu_part="18.00", cheaper_gpu_hour="12.00")
    assert SmallerGpu().check(dear, measure(dear, series), series).wasted == Decimal("0")  # never negative


def test_no_smaller_gpu_on_a_small_card():
    series = make_series([1.0] * 60, gpus=1, gpu_util=20, gpu_mem=2 * GiB, gpu_total=24 * GiB,
                         gpu_name="NVIDIA GeForce RTX 4090")
    facts = make_facts(cores=1, gpus=1, price="5.00", gpu_part="4.00")
    assert "smaller_gpu" not in by_code(diagnose(facts, series))


def test_money_is_never_counted_twice_across_gpu_findings():
    series = make_series([1.0] * 360, gpus=2, gpu_util=20, gpu_mem=10 * GiB)
    facts = make_facts(cores=1, gpus=2, runtime=3600, price="20.00", gpu_part="18.00", cheaper_gpu_hour="0")
    found = by_code(diagnose(facts, series))
    assert found["smaller_gpu"].wasted == Decimal("18.00")
    assert found["gpu_underused"].wasted == Decimal("0.00")  # capped: the GPU part is already claimed
    assert sum(f.wasted for f in found.values()) <= facts.price


# -- time ---------------------------------------------------------------------


def test_time_limit_too_long():
    series = make_series([3.9] * 180)
    facts = make_facts(cores=4, runtime=1800, limit=24 * 3600)
    f = by_code(diagnose(facts, series))["time_limit_too_long"]
    assert "--time=00:45:00" in f.recommendation  # 30 min x 1.5
    assert f.wasted == Decimal("0") and f.severity == "info" and f.confidence == 1.0
    # rounded up to 5 minutes
    odd = make_facts(cores=4, runtime=1900, limit=24 * 3600)
    assert "--time=00:50:00" in by_code(diagnose(odd, series))["time_limit_too_long"].recommendation
    # a short limit is left alone
    assert "time_limit_too_long" not in by_code(diagnose(make_facts(cores=4, runtime=300, limit=3600),
                                                         make_series([3.9] * 30)))


def test_short_job_and_bundle_advice():
    series = make_series([3.9] * 3)
    f = by_code(diagnose(make_facts(cores=4, runtime=30), series))["short_job"]
    assert "array" in f.recommendation and f.wasted == Decimal("0")

    day = [make_facts(runtime=20, started_at=T0 + 600 * i, job_id=str(i)) for i in range(25)]
    advice = bundle_advice(day)
    assert len(advice) == 1
    assert advice[0].code == "many_short_jobs" and "--array" in advice[0].recommendation
    assert "25" in advice[0].title
    spread = [make_facts(runtime=20, started_at=T0 + 6 * 3600 * i, job_id=str(i)) for i in range(25)]
    assert bundle_advice(spread) == []  # 4 a day
    few = [make_facts(runtime=20, user="bob", job_id=str(i)) for i in range(19)]
    assert bundle_advice(few + [make_facts(runtime=600, user="bob")]) == []
    both = bundle_advice(day + [make_facts(runtime=20, user="bob", job_id=f"b{i}") for i in range(20)])
    assert len(both) == 2


# -- a good job ---------------------------------------------------------------


def test_a_well_behaved_job_gets_no_findings():
    series = make_series([3.8] * 252, rss=int(9.6 * GiB))  # 42 min
    facts = make_facts(cores=4, runtime=2520, mem=16 * GiB, limit=3600, price="2.80")
    eff = measure(facts, series)
    assert eff.cpu_efficiency == pytest.approx(0.95)
    assert eff.mem_efficiency == pytest.approx(0.6)
    assert eff.time_limit_efficiency == pytest.approx(0.7)
    assert diagnose(facts, series) == []


def test_findings_sorted_by_waste_and_rules_are_typed():
    series = make_series([1.0] * 60, gpus=1, gpu_util=30, gpu_mem=60 * GiB, rss=2 * GiB)
    facts = make_facts(cores=4, gpus=1, price="20.00", gpu_part="16.00", mem=16 * GiB, limit=24 * 3600)
    found = diagnose(facts, series)
    wasted = [f.wasted for f in found]
    assert wasted == sorted(wasted, reverse=True)
    assert {f.code for f in found} >= {"single_threaded", "gpu_underused", "memory_over_requested",
                                       "time_limit_too_long"}
    codes = [rule.code for rule in RULES]
    assert len(codes) == len(set(codes)) == 10
    assert all(isinstance(rule, Rule) for rule in RULES)
    assert all(isinstance(f.wasted, Decimal) and f.wasted == f.wasted.quantize(Decimal("0.01")) for f in found)


# -- downsampling -------------------------------------------------------------


def test_downsample_keeps_totals_peaks_and_gaps():
    cores = [1.0 + (i % 7) * 0.5 for i in range(360)]
    rss = [GiB + (i % 13) * 1024**2 for i in range(361)]
    rss[101] = 7 * GiB  # a short peak
    series = make_series(cores, rss=rss, gpus=2, gpu_util=40, gpu_mem=5 * GiB, drop=range(150, 153),
                         cpu_override={250: 3.0})  # a 40 s gap and a counter reset
    small = downsample(series, 60)
    assert len(small.samples) < len(series.samples) / 4
    assert small.samples[0].t == series.samples[0].t and small.samples[-1].t == series.samples[-1].t
    assert small.cpu_seconds() == pytest.approx(series.cpu_seconds())
    assert small.peak_rss() == series.peak_rss() == 7 * GiB
    assert small.io_bytes() == series.io_bytes()
    assert small.gaps() == series.gaps() == [(T0 + 1490, T0 + 1530)]
    assert small.covered_seconds() == pytest.approx(series.covered_seconds())
    assert small.mean_cores() == pytest.approx(series.mean_cores())
    assert small.gpu_mean_util() == pytest.approx(series.gpu_mean_util())
    assert small.peak_gpu_memory() == series.peak_gpu_memory()
    # an empty bucket stays empty: a long gap is not filled
    long_gap = make_series([2.0] * 120, drop=range(30, 70))
    coarse = downsample(long_gap, 60)
    assert coarse.gaps() == long_gap.gaps() == [(T0 + 290, T0 + 700)]
    assert not any(T0 + 290 < s.t < T0 + 700 for s in coarse.samples)
    # downsampling twice keeps them too
    assert downsample(coarse, 300).gaps() == long_gap.gaps()
    with pytest.raises(ValueError, match="bucket_s"):
        downsample(series, 15)


# -- input validation ---------------------------------------------------------

GOOD = {"t": T0, "seq": 0, "cpu_s": 0.0, "cores": 0.0, "rss": 1, "read": 0, "write": 0, "nproc": 1,
        "nthreads": 1, "gpus": [{"index": 0, "uuid": "GPU-0", "name": "NVIDIA H100", "util": 97,
                                 "mem_used": 1, "mem_total": 2}]}


def test_from_json_accepts_the_wire_format():
    s = Sample.from_json(GOOD)
    assert s.gpus[0].util == 97 and s.gpus[0].name == "NVIDIA H100"
    assert Sample.from_json({k: v for k, v in GOOD.items() if k != "gpus"}).gpus == ()
    assert Sample.from_json(s.to_json()) == s


@pytest.mark.parametrize("field, value, message", [
    ("t", "1718000000", "'t'"),
    ("seq", True, "'seq'"),
    ("cpu_s", -1.0, "'cpu_s'"),
    ("rss", 1.5, "'rss'"),
    ("cores", float("nan"), "'cores'"),
    ("gpus", {"index": 0}, "'gpus'"),
])
def test_from_json_refuses_bad_fields_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        Sample.from_json({**GOOD, field: value})


def test_from_json_refuses_missing_fields_and_bad_gpus():
    with pytest.raises(ValueError, match="'nproc' is missing"):
        Sample.from_json({k: v for k, v in GOOD.items() if k != "nproc"})
    with pytest.raises(ValueError, match=r"gpus\[0\].*'util'"):
        Sample.from_json({**GOOD, "gpus": [{**GOOD["gpus"][0], "util": 130}]})
    with pytest.raises(ValueError, match="line 2"):
        JobSeries.from_json_lines(json.dumps(GOOD) + "\n{not json\n", 10)


def test_job_facts_refuse_float_money_and_parts_that_do_not_add_up():
    with pytest.raises(MoneyError):
        replace(make_facts(), price=4.0)
    with pytest.raises(ValueError, match="do not add up"):
        make_facts(price="4.00", cpu_part="1.00")


# -- recorded-style fixtures --------------------------------------------------


def test_fixture_busy_loop_on_four_cores():
    text = (FIXTURES / "busy_loop_4cores.jsonl").read_text()
    assert len(text.splitlines()) == 62  # one sample was delivered twice
    series = JobSeries.from_json_lines(text, 10)
    assert len(series.samples) == 61
    assert series.gaps() == []
    facts = make_facts(cores=4, runtime=600, price="4.00")
    eff = measure(facts, series)
    assert eff.cpu_efficiency == pytest.approx(0.25, abs=0.02)
    found = by_code(diagnose(facts, series))
    assert set(found) == {"single_threaded"}
    assert found["single_threaded"].wasted == Decimal("3.00")


def test_fixture_idle_a100s_with_an_agent_restart():
    series = JobSeries.from_json_lines((FIXTURES / "gpu_idle_4xa100.jsonl").read_text(), 10)
    assert len(series.samples) == 28  # seq restarts at 0 after the restart; nothing dropped
    assert len(series.gaps()) == 1
    facts = make_facts(cores=4, gpus=4, runtime=300, price="100.00", gpu_part="90.00")
    eff = measure(facts, series)
    assert eff.covered_fraction == pytest.approx(260 / 300, abs=0.01)
    # the CPU used during the gap (42.572 -> 54.572 across it) is counted
    assert eff.cpu_seconds == pytest.approx(series.samples[-1].cpu_s) == pytest.approx(87.277)
    covered_only = sum(b.cpu_s - a.cpu_s for a, b, gap in series.pairs() if not gap) + series.samples[0].cpu_s
    assert eff.cpu_seconds - covered_only == pytest.approx(12.0)
    found = by_code(diagnose(facts, series))
    assert found["gpu_idle"].severity == "critical"
    assert found["gpu_idle"].wasted == Decimal("88.20")
    assert found["gpu_idle"].confidence == pytest.approx(0.867, abs=0.01)
    assert "idle_job" not in found


def test_what_is_known_of_a_job_decides_which_rules_run():
    """An srun/MPI job the agent saw only partly: no verdict from the batch shell's processes; with
    Slurm's total CPU (view "cpu_total") the idle-cores verdict comes from that figure alone."""
    from dataclasses import replace

    series = make_series([0.1] * 60, rss=50 * 1024**2)  # what the batch shell did: almost nothing
    facts = make_facts(cores=8, price="8.00")
    assert by_code(diagnose(facts, series))["idle_cores"].wasted == Decimal("7.90")  # as if the shell were all
    assert not {f.code for f in diagnose(facts, series, view="any")} - {"time_limit_too_long", "short_job"}
    slurm_saw = replace(measure(facts, series), cpu_efficiency=0.125)  # one core of eight, over every node
    found = by_code(diagnose(facts, series, eff=slurm_saw, view="cpu_total"))
    assert set(found) - {"time_limit_too_long", "short_job"} == {"idle_cores"}
    assert found["idle_cores"].wasted == Decimal("7.00")
