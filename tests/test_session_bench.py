"""
``bench/session_bench.py`` runs as the bench does (twistd, EV worker
processes released together), small: 3 EVs, 5 CurrentDemand loops.  The
figures are the bench's to print; this only proves the bench still works
and counts what it says it counts.
"""

from tests.benches import load_bench


def test_small_din_run_counts_every_loop_and_the_all_charging_window():
    """3 DIN EVs in 2 worker processes: every CurrentDemand is timed, the window is a subset, CPU is counted on both sides."""
    bench = load_bench("session_bench.py")
    figures = bench.run(3, 5, 0.02, 2, "din")
    assert figures["failures"] == []
    loop = figures["latencies"]["CurrentDemandRes"]
    assert len(loop) == 3 * (5 + 1)  # five loops, then the one saying charging is complete
    steady = figures["all_charging"]
    assert 0 < len(steady) <= len(loop) and set(steady) <= set(loop)
    assert figures["cpu_per_message_us"] > 0 and figures["ev_cpu_per_message_us"] > 0
