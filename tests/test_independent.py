"""The independent checks skip outside CI and fail in CI (tests/independent.py)."""

import pytest

from tests.independent import independent_check_unavailable, in_ci


@pytest.mark.parametrize("variable,value", [("CI", "true"), ("CI", "1"), ("EVSEV2G_REQUIRE_INDEPENDENT", "1")])
def test_fails_in_ci(monkeypatch, variable, value):
    """With CI=true (as CI sets it) or EVSEV2G_REQUIRE_INDEPENDENT=1, a missing independent check is a failure, not a skip."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("EVSEV2G_REQUIRE_INDEPENDENT", raising=False)
    monkeypatch.setenv(variable, value)
    assert in_ci()
    with pytest.raises(pytest.fail.Exception, match="Java is missing .in CI this independent check must run"):
        independent_check_unavailable("Java is missing")


def test_skips_elsewhere(monkeypatch):
    """Outside CI it skips with the reason."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("EVSEV2G_REQUIRE_INDEPENDENT", raising=False)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception, match="Java is missing"):
        independent_check_unavailable("Java is missing")


def test_ci_script_requires_the_independent_checks():
    """.ci/run exports CI=true and EVSEV2G_REQUIRE_ORACLE=1 before running the tests."""
    from tests.conftest import REPO_ROOT

    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert "export CI=true EVSEV2G_REQUIRE_ORACLE=1" in script
    assert script.index("export CI=true") < script.index("venv/bin/python -m pytest -q")
