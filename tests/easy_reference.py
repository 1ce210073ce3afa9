"""An independent EASY backfilling reference: one cluster of cores, event by event,
no plans kept between events. Written apart from routing/easy.py so the engine can be
checked against it job by job (Mu'alem and Feitelson, 2001).

Convention (the simulator's): a job that ran longer than it asked is replayed whole,
its limit taken as max(asked, run); with ``kill_at_limit`` it ends at its limit, as
Slurm would end it. At each instant every end is applied and every arrival queued
before one scheduling pass.
"""

from __future__ import annotations


def easy_starts(jobs, total: int, backfill: bool = True, kill_at_limit: bool = False) -> dict:
    """``jobs``: (key, submit, run, asked, cores) in queue order. Returns key -> start;
    jobs wider than ``total`` never start and are left out."""
    pending = sorted((j for j in jobs if j[4] <= total), key=lambda j: j[1])  # stable: ties keep queue order
    pending = [(k, s, min(r, a) if kill_at_limit else r, a if kill_at_limit else max(r, a), c)
               for k, s, r, a, c in pending]
    starts, queue, running, free, i = {}, [], [], total, 0  # running: (real end, planned end, cores)
    while i < len(pending) or queue:
        t = min([r[0] for r in running] + ([pending[i][1]] if i < len(pending) else []))
        free += sum(r[2] for r in running if r[0] <= t)
        running = [r for r in running if r[0] > t]
        while i < len(pending) and pending[i][1] <= t:
            queue.append(pending[i])
            i += 1

        def start(job):
            nonlocal free
            starts[job[0]] = t
            running.append((t + job[2], t + job[3], job[4]))
            free -= job[4]

        while queue and queue[0][4] <= free:
            start(queue.pop(0))
        if not queue or not backfill:
            continue
        # the head's reservation: the first planned instant where, with every job ending then, it fits
        avail, shadow, spare = free, float("inf"), 0
        for end in sorted({r[1] for r in running}):
            avail += sum(r[2] for r in running if r[1] == end)
            if avail >= queue[0][4]:
                shadow, spare = end, avail - queue[0][4]
                break
        for job in list(queue[1:]):
            if job[4] > free:
                continue
            if t + job[3] <= shadow:
                start(job)
            elif job[4] <= spare:
                spare -= job[4]
                start(job)
            else:
                continue
            queue.remove(job)
    return starts
