"""The diagnosis rules on a GPU series recorded on a real H100 (tests/fixtures/monitoring/README.md)."""

from decimal import Decimal
from pathlib import Path

from computenet.monitoring.efficiency import JobFacts, measure
from computenet.monitoring.rules import diagnose
from computenet.monitoring.series import JobSeries

FIXTURE = Path(__file__).parent / "fixtures" / "monitoring" / "h100_busy_then_idle.jsonl"


def recorded(first: int = 0, last: int | None = None) -> JobSeries:
    lines = FIXTURE.read_text().splitlines()[first:last]
    return JobSeries.from_json_lines(lines, 0.5)


def facts(series: JobSeries, price: str = "10.00", gpu_part: str = "9.00") -> JobFacts:
    runtime = series.samples[-1].t - series.samples[0].t
    return JobFacts(job_id="h100", cores=1, gpus=1, gpu_type="h100", mem_requested_bytes=0, time_limit_s=None,
                    runtime_s=runtime, price=Decimal(price), price_cpu_part=Decimal(price) - Decimal(gpu_part),
                    price_gpu_part=Decimal(gpu_part), app=None, user="u", cluster="gpu-cluster",
                    started_at=series.samples[0].t)


def test_the_recording_is_what_the_card_did():
    series = recorded()
    utils = [s.gpus[0].util for s in series.samples]
    assert max(utils) >= 97 and utils[-1] == 0 and utils[0] == 0
    assert series.samples[0].gpus[0].name.startswith("NVIDIA H100")
    busy = sum(1 for u in utils if u > 90)
    assert 12 <= busy <= 18  # 8 s of matmul at 0.5 s
    assert max(series.peak_gpu_memory().values()) > 1.5 * 1024 ** 3


def test_the_whole_job_is_an_under_used_card_that_would_fit_a_smaller_one():
    series = recorded()
    eff = measure(facts(series), series)
    assert 0.25 <= eff.gpu_utilisation <= 0.45
    codes = {f.code: f for f in diagnose(facts(series), series)}
    assert "gpu_underused" in codes and "smaller_gpu" in codes and "gpu_idle" not in codes
    assert codes["gpu_underused"].wasted > 0


def test_the_idle_tail_alone_is_an_idle_gpu_priced():
    series = recorded(first=29)  # after the matmul loop: the context is held, nothing runs
    found = {f.code: f for f in diagnose(facts(series), series)}
    assert "gpu_idle" in found and found["gpu_idle"].severity == "critical"
    assert found["gpu_idle"].wasted == Decimal("9.00")  # every GPU yuan of an idle card
    assert "gpu_underused" not in found and "smaller_gpu" not in found
