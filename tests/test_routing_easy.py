"""EASY backfilling and strict FIFO on a hand-computed example (the engine the
router's wait prediction and the simulator share)."""

from computenet.routing.easy import Need, Pool, Running, Waiting, predict_starts


def _queue():
    # pool of 10 cores; R1 holds 6 until t=100
    return [Waiting("A", Need(8), 50), Waiting("B", Need(4), 200), Waiting("C", Need(2), 50),
            Waiting("D", Need(2), 500)]


RUNNING = [Running(Need(6), planned_end=100, expected_end=100)]


def test_easy_backfills_what_does_not_delay_the_head():
    # t=0: A (8) waits for R1 -> shadow 100 with 2 spare. B (4, ends 200) would delay A: no.
    # C (2, ends 50 <= 100): backfilled. D (2, ends 500) fits the 2 spare: backfilled.
    # t=100: R1 ends, A starts. t=150: A ends, B starts.
    assert predict_starts(0, Pool(10), RUNNING, _queue()) == {"A": 100, "B": 150, "C": 0, "D": 0}


def test_fifo_stops_at_the_first_job_that_does_not_fit():
    assert predict_starts(0, Pool(10), RUNNING, _queue(), backfill=False) == {"A": 100, "B": 150, "C": 150,
                                                                              "D": 150}


def test_gpus_are_a_second_dimension_and_early_ends_free_resources_early():
    running = [Running(Need(2, 4), planned_end=1000, expected_end=300)]  # all 4 GPUs, ends early
    queue = [Waiting("gpu", Need(1, 2), 60), Waiting("cpu", Need(4, 0), 60)]
    starts = predict_starts(0, Pool(8, 4), running, queue)
    assert starts == {"gpu": 300, "cpu": 0}  # the CPU job backfills; the GPU job starts at the real end


def test_a_job_that_never_fits_is_left_out_and_stops_nothing_behind_it():
    starts = predict_starts(0, Pool(4), [], [Waiting("huge", Need(64), 60), Waiting("small", Need(1), 60)])
    assert starts == {"small": 0}


def test_until_stops_early():
    starts = predict_starts(0, Pool(10), RUNNING, _queue(), until="C")
    assert starts["C"] == 0 and "B" not in starts


# -- the plan made once per queue gives the same start as simulating with the job --

from hypothesis import given, settings, strategies as st  # noqa: E402

from computenet.routing.easy import QueuePlan  # noqa: E402

shapes = st.tuples(st.integers(1, 12), st.integers(0, 2), st.sampled_from([30, 60, 300, 900, 3600]))


@settings(max_examples=300, deadline=None)
@given(running=st.lists(st.tuples(shapes, st.integers(0, 3000), st.floats(0.1, 1.0)), max_size=6),
       queue=st.lists(st.tuples(shapes, st.floats(0.1, 1.0)), max_size=12), mine=shapes,
       backfill=st.booleans())
def test_queue_plan_equals_the_direct_simulation(running, queue, mine, backfill):
    total = Pool(16, 2)
    run = []
    for (cores, gpus, limit), used, ratio in running:
        if sum(r.need.cores for r in run) + cores > 16 or sum(r.need.gpus for r in run) + gpus > 2:
            continue
        left = max(0, limit - used)
        run.append(Running(Need(cores, gpus), planned_end=left, expected_end=left * ratio))
    ahead = [Waiting(i, Need(c, g), limit, limit * ratio) for i, ((c, g, limit), ratio) in enumerate(queue)]
    me = Waiting("me", Need(mine[0], mine[1]), mine[2])
    direct = predict_starts(0, total, run, [Waiting(w.key, w.need, w.limit_s, w.runtime_s) for w in ahead] + [me],
                            until="me", backfill=backfill).get("me")
    planned = QueuePlan(0, total, run, ahead, backfill=backfill).start(me.need, me.limit_s)
    assert planned == direct
