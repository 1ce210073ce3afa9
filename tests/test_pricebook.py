"""The price book (versions, specificity, GPU models) and the billing strategies."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from computenet.billing import pricebook
from computenet.billing.rating import Prices, Rules, Strategy, Usage, rate_usage
from computenet.config import BillingConfig, ClusterConfig, Price
from computenet.services.billing.pricing import quote
from computenet.store.models import Cluster, Partition, PriceItem

from conftest import local_cluster

D = Decimal
HOUR = 3600


@pytest.mark.parametrize("strategy,usage,expected", [
    # 4 cores, 1 GPU, 10 GB for an hour; core 0.10/h, GPU 8.00/h; node: 8 GB per core, 16 cores per GPU
    (Strategy.CORES, Usage(HOUR, 4, 1, 10240), D("8.40")),
    (Strategy.GPUS, Usage(HOUR, 4, 1, 10240), D("8.00")),
    (Strategy.MAX_CORES_MEMORY, Usage(HOUR, 1, 0, 40960), D("0.50")),  # 40 GB = 5 cores' memory
    (Strategy.MAX_CORES_MEMORY, Usage(HOUR, 8, 0, 1024), D("0.80")),  # cores dominate
    (Strategy.MAX_GPUS_CORES, Usage(HOUR, 32, 1, 0), D("16.00")),  # 32 cores block 2 GPUs
    (Strategy.MAX_GPUS_CORES, Usage(HOUR, 4, 1, 0), D("8.00")),  # GPUs dominate
])
def test_strategies(strategy, usage, expected):
    rules = Rules(strategy=strategy, mem_per_core_mb=8192, cores_per_gpu=16)
    assert rate_usage(usage, Prices(D("0.10"), D("8.00")), rules).amount == expected


def test_memory_price_and_billed_seconds():
    rated = rate_usage(Usage(1800, 2, 0, 4096), Prices(D("0.10"), mem_gb_hour=D("0.01")))
    assert rated.amount == D("0.12")  # 1 core-hour 0.10 + 2 GB-hours 0.02
    assert rated.core_seconds == 3600
    frac = rate_usage(Usage(10, 1, 0, 12288), Prices(D("0.10")),
                      Rules(strategy=Strategy.MAX_CORES_MEMORY, mem_per_core_mb=8192))
    assert frac.core_seconds == 15  # 1.5 core-equivalents x 10 s


@pytest.mark.parametrize("rounding,expected", [("half_up", D("0.02")), ("up", D("0.02")), ("down", D("0.01"))])
def test_rounding(rounding, expected):
    # 1 core for 9 min at 0.10/h = 0.015
    assert rate_usage(Usage(540, 1), Prices(D("0.10")), Rules(rounding=rounding)).amount == expected


def test_minimum_charge_only_for_jobs_that_ran():
    rules = Rules(minimum_charge=D("0.50"))
    assert rate_usage(Usage(60, 1), Prices(D("0.10")), rules).amount == D("0.50")
    assert rate_usage(Usage(0, 1), Prices(D("0.10")), rules).amount == D("0.00")
    assert rate_usage(Usage(36000, 1), Prices(D("0.10")), rules).amount == D("1.00")
    with pytest.raises(ValueError):
        Rules(rounding="sideways")
    with pytest.raises(ValueError):
        Rules(minimum_charge=D("-1"))


def test_bad_prices_in_configuration():
    for bad in ({"core_hour": "-1"}, {"core_hour": "0.0000001"}, {"core_hour": 0.1},
                {"core_hour": "1", "gpu_hour_by_model": {"a100": "-2"}}):
        with pytest.raises(ValidationError):
            Price(**bad)
    with pytest.raises(ValidationError):
        BillingConfig(rounding="sideways")


@pytest.fixture
def part(platform):
    with platform.db.session() as session:
        return session.scalar(select(Partition))


def test_first_price_from_config_covers_the_past(platform, part):
    with platform.db.session() as session:
        items = session.scalars(select(PriceItem)).all()
        assert [(i.partition, i.resource, i.unit_price, i.version) for i in items] == [
            ("local", "core_hour", D("36.000000"), 1), ("local", "gpu_hour", D("90.000000"), 1)]
        assert items[0].effective_from == pricebook.EPOCH
        old = datetime(2020, 1, 1, tzinfo=timezone.utc)
        assert pricebook.prices_at(session, part.cluster_id, "local", old).core_hour == D("36")


def test_versions_price_jobs_as_when_they_started(platform, part):
    change = datetime.now(timezone.utc) + timedelta(hours=1)
    with platform.db.session() as session:
        item = pricebook.set_price(session, part.cluster_id, "local", "core_hour", D("40.00"),
                                   effective_from=change, actor="ops", reason="new tariff")
        assert item.version == 2
        p = session.get(Partition, part.id)
        before = quote(session, p, Usage(HOUR, 1), change - timedelta(seconds=1), BillingConfig())
        after = quote(session, p, Usage(HOUR, 1), change, BillingConfig())
        assert (before.amount, after.amount) == (D("36.00"), D("40.00"))
        assert len(pricebook.history(session, part.cluster_id)) == 3  # nothing was overwritten


def test_most_specific_price_wins(platform, part):
    with platform.db.session() as session:
        cid = part.cluster_id
        pricebook.set_price(session, cid, "*", "core_hour", D("1.00"), effective_from=pricebook.EPOCH)
        pricebook.set_price(session, cid, "local", "gpu_hour", D("12.00"), gpu_model="h100",
                            effective_from=pricebook.EPOCH)
        pricebook.set_price(session, cid, "local", "core_hour", D("2.00"), qos="high",
                            effective_from=pricebook.EPOCH)
        now = datetime.now(timezone.utc)
        assert pricebook.prices_at(session, cid, "local", now).core_hour == D("36")  # partition beats "*"
        assert pricebook.prices_at(session, cid, "other", now).core_hour == D("1.00")  # "*" for the rest
        assert pricebook.prices_at(session, cid, "local", now, qos="high").core_hour == D("2.00")
        assert pricebook.prices_at(session, cid, "local", now, gpu_model="h100").gpu_hour == D("12.00")
        assert pricebook.prices_at(session, cid, "local", now, gpu_model="a100").gpu_hour == D("90")
        assert pricebook.prices_at(session, cid + 999, "local", now) is None


@pytest.mark.parametrize("args,fragment", [
    (("disk_hour", D("1")), "unknown resource"),
    (("core_hour", D("-1")), "negative"),
    (("core_hour", D("0.0000001")), "6 decimal places"),
    (("core_hour", 1.5), "Decimal"),
])
def test_set_price_refuses(platform, part, args, fragment):
    with platform.db.session() as session, pytest.raises(pricebook.PriceError) as err:
        pricebook.set_price(session, part.cluster_id, "local", *args)
    assert fragment in str(err.value)


def test_config_changes_become_new_versions(make_platform):
    cfg = local_cluster()
    platform = make_platform([cfg])
    platform.sync_clusters()  # unchanged configuration: nothing new
    with platform.db.session() as session:
        assert session.scalar(select(func.count(PriceItem.id))) == 2
    cfg.prices["*"] = Price(core_hour=D("30.00"), gpu_hour=D("90.00"), gpu_hour_by_model={"a100": D("95.00")})
    platform.sync_clusters()
    with platform.db.session() as session:
        rows = session.scalars(select(PriceItem).order_by(PriceItem.id)).all()
        assert [(r.resource, r.gpu_model, r.unit_price, r.version) for r in rows[2:]] == [
            ("core_hour", "", D("30.000000"), 2), ("gpu_hour", "a100", D("95.000000"), 1)]
        # a change, and a price for a new key, apply from now, never backwards
        assert rows[2].effective_from > pricebook.EPOCH and rows[3].effective_from > pricebook.EPOCH
