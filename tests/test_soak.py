"""
A short soak of ``twistd evsev2g`` with ``bench/soak.py``'s own code: 50
sequential sessions, then 20 concurrent EVs of which a share misbehave
(dropping mid-charge, garbage, idling, pausing).  Every well-behaved EV
completes, the SECC's file descriptors return to where they started and
its memory does not grow with the sessions.  The long run (1,000 + 100) is
``python bench/soak.py``.
"""

from argparse import Namespace

import pytest_twisted

from tests.benches import load_bench


@pytest_twisted.ensureDeferred
async def test_short_soak_completes_everything_without_growth(reactor):
    """50 + 20 sessions: all well-behaved complete, misbehaving ones are closed, FDs back to the start, RSS flat (≤ 1 MB over 40 sessions)."""
    bench = load_bench("soak.py")
    args = Namespace(sequential=50, concurrent=20, misbehaving=0.4, current_demands=3, pause=0.5, settle=4.0, every=10, guard=60.0, rounds=1, interval=0.1)
    figures = await bench.soak(reactor, args)
    counts = figures["counts"]
    assert counts["sequential"] == [50, 50], figures["failures"]
    assert counts["well-behaved"][0] == counts["well-behaved"][1] == 12, figures["failures"]
    for kind in ("dropping mid-charge", "garbage", "idling", "pausing"):
        started, done = counts[kind]
        assert started == done == 2, (kind, figures["failures"])
    assert figures["fds_end"] == figures["fds_start"]
    rss = dict(figures["rss"])
    assert rss["after 50"] - rss["after 10"] <= 1.0, figures["rss"]
    assert rss["idle again"] <= rss["end"] + 0.5, figures["rss"]  # nothing grows once idle (collected, trimmed)
    assert figures["current_demand"]["concurrent, well-behaved"]
