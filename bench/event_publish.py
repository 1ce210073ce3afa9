"""How fast the outbox drains to NATS JetStream: N events written, then run_once() until none is
left; CPU and wall time per event. Needs a NATS with JetStream (default nats://127.0.0.1:4222).

    .venv/bin/python bench/event_publish.py [N] [nats_url]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from types import SimpleNamespace

from computenet.config import EventsConfig
from computenet.services.integration.event_publisher import EventPublisher
from computenet.store.db import Database
from computenet.store.event_models import OutboxEvent, _row


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    url = sys.argv[2] if len(sys.argv) > 2 else "nats://127.0.0.1:4222"
    tag = uuid.uuid4().hex[:8]
    cfg = EventsConfig(nats_url=url, stream=f"BENCH{tag}", subject_prefix=f"bench{tag}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.migrate()
        with db.engine.begin() as conn:
            conn.execute(OutboxEvent.__table__.insert(),
                         [_row("job.state_changed", (1, "acme"), f"job/{i}", {"job": i, "from": "PENDING",
                                                                            "to": "RUNNING", "reason": ""})
                          for i in range(n)])
        publisher = EventPublisher(SimpleNamespace(db=db, settings=SimpleNamespace(events=cfg)))
        wall, cpu, sent = time.perf_counter(), time.process_time(), 0
        while batch := publisher.run_once().published:
            sent += len(batch)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{sent} events: {wall:.2f} s wall, {cpu:.2f} s CPU, {1e6 * wall / sent:.0f} us wall/event, "
              f"{1e6 * cpu / sent:.0f} us CPU/event")
        db.dispose()

    async def drop() -> None:
        import nats

        nc = await nats.connect(url)
        await nc.jetstream().delete_stream(cfg.stream)
        await nc.close()

    asyncio.run(drop())


if __name__ == "__main__":
    main()
