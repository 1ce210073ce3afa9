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
