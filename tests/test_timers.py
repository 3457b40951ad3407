"""Tests for :mod:`evsev2g.timers`."""

import pytest

from evsev2g import timers


def test_standard_values():
    """The defaults are the standard's figures."""
    t = timers.Timers()
    assert (t.sequence_timeout, t.communication_setup, t.ongoing, t.cable_check, t.pre_charge) == (60, 18, 55, 38, 5)
    assert timers.V2G_SECC_CURRENT_DEMAND_PERFORMANCE_TIME == 0.025


def test_positive_only():
    """Zero or negative timers are refused."""
    with pytest.raises(ValueError):
        timers.Timers(sequence_timeout=0)
