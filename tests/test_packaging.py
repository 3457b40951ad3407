"""
Packaging: a fresh virtualenv with ``pip install .`` or ``pip install -e .``
must leave ``twistd evsev2g --help`` working (twistd finds plugins by
scanning ``twisted/plugins`` directories on ``sys.path``; a flat layout's
default editable install would hide ours).  Slow-ish (two installs).
"""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def run(*args, cwd, timeout=600):
    """Run a command; fail the test with its output when it fails."""
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_fresh_install_runs_the_twistd_plugin(tmp_path, editable):
    """After installing into a fresh venv, `twistd evsev2g --help` shows our options, from any directory."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", *(["-e"] if editable else []), REPO_ROOT, cwd=tmp_path)
    help_text = run(venv / "bin" / "twistd", "evsev2g", "--help", cwd=tmp_path)
    assert "--config=" in help_text and "--set=" in help_text
    where = run(python, "-c", "import evsev2g, twisted.plugins as p; print(evsev2g.__file__); print(p.__file__)", cwd=tmp_path)
    package, plugins = where.splitlines()
    assert package.startswith(str(REPO_ROOT if editable else venv)), package
    assert "pluginPackagePaths" in open(plugins).read(), "our wheel must not replace Twisted's twisted/plugins/__init__.py"
    if not editable:
        site = next((venv / "lib").glob("python*/site-packages"))
        assert (site / "twisted" / "plugins" / "evsev2g_plugin.py").is_file()
        assert not (site / "tests").exists()
