"""Background threads that run each poller's run_once() on its interval."""

from __future__ import annotations

import logging
import threading

from .platform import Platform
from .enforcement import Enforcer
from .delivery import Deliverer
from .exhaustion import ExhaustionWatch
from .notifications import BalanceWatch
from .reroute import Rerouter
from .poller import ClusterPoller
from .job_files import OutputCollector
from .storage_meter import StorageMeter
from .monitoring import SampleCollector
from .sample_retention import SampleCompactor
from .step_usage import StepUsageCollector
from .cluster_probe import ClusterProbe

log = logging.getLogger(__name__)
SYNC_INTERVAL_S = 60.0
DELIVERY_INTERVAL_S = 10.0
REROUTE_INTERVAL_S = 60.0
ENFORCE_INTERVAL_S = 30.0  # how soon a top-up lifts a block, and a lost block returns
COLLECT_INTERVAL_S = 2.0  # how soon an ended job's outputs are in the workspace
METER_INTERVAL_S = 3600.0  # storage is charged per day; an hourly pass catches the new day early


class BackgroundServices:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.pollers = {c.name: ClusterPoller(platform, c.name) for c in platform.settings.clusters}

    def _loop(self, name: str, interval: float, step) -> None:
        while not self.stop_event.is_set():
            try:
                step()
            except Exception:  # a bad pass must not kill the loop
                log.exception("%s failed", name)
            self.stop_event.wait(interval)

    def sync(self) -> None:
        """Refresh every cluster, and poll the ones registered since the start."""
        self.platform.sync_clusters()
        for cfg in list(self.platform.settings.clusters):
            if cfg.name not in self.pollers and cfg.name in self.platform.adapters:
                poller = self.pollers[cfg.name] = ClusterPoller(self.platform, cfg.name)
                thread = threading.Thread(target=self._loop, args=(f"poller {cfg.name}", cfg.poll_interval_s,
                                                                   poller.run_once), name=f"poller-{cfg.name}",
                                          daemon=True)
                self.threads.append(thread)
                thread.start()

    def start(self) -> None:
        for cfg in self.platform.settings.clusters:
            poller = self.pollers[cfg.name]
            thread = threading.Thread(target=self._loop, args=(f"poller {cfg.name}", cfg.poll_interval_s, poller.run_once),
                                      name=f"poller-{cfg.name}", daemon=True)
            self.threads.append(thread)
        self.threads.append(threading.Thread(target=self._loop, args=("cluster sync", SYNC_INTERVAL_S, self.sync),
                                             name="cluster-sync", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=(
            "cluster probe", self.platform.settings.routing.probe_interval_seconds,
            ClusterProbe(self.platform).run_once), name="cluster-probe", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("enforcement", ENFORCE_INTERVAL_S,
                                                                      Enforcer(self.platform).run_once),
                                             name="enforcement", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("balance watch", ENFORCE_INTERVAL_S,
                                                                      BalanceWatch(self.platform).run_once),
                                             name="balance-watch", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("exhaustion", ENFORCE_INTERVAL_S,
                                                                      ExhaustionWatch(self.platform).run_once),
                                             name="exhaustion", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("delivery", DELIVERY_INTERVAL_S,
                                                                      Deliverer(self.platform).run_once),
                                             name="delivery", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("re-routing", REROUTE_INTERVAL_S,
                                                                      Rerouter(self.platform).run_once),
                                             name="re-routing", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("outputs", COLLECT_INTERVAL_S,
                                                                      OutputCollector(self.platform).run_once),
                                             name="outputs", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("storage meter", METER_INTERVAL_S,
                                                                      StorageMeter(self.platform).run_once),
                                             name="storage-meter", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("samples", COLLECT_INTERVAL_S,
                                                                      SampleCollector(self.platform).run_once),
                                             name="samples", daemon=True))
        monitoring = self.platform.settings.monitoring
        if monitoring.enabled and monitoring.step_usage:
            self.threads.append(threading.Thread(target=self._loop, args=("sstat", monitoring.collect_every_s,
                                                                          StepUsageCollector(self.platform).run_once),
                                                 name="step-usage", daemon=True))
        self.threads.append(threading.Thread(target=self._loop, args=("sample retention", METER_INTERVAL_S,
                                                                      SampleCompactor(self.platform).run_once),
                                             name="sample-retention", daemon=True))
        from .sessions.watch import SessionWatch  # interactive sessions: queued -> starting -> running -> ended

        self.threads.append(threading.Thread(target=self._loop, args=(
            "sessions", self.platform.settings.sessions.watch_interval_s, SessionWatch(self.platform).run_once),
            name="sessions", daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
