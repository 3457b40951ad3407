"""The scripts of ``bench/`` as modules, for the tests that run them small."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_bench(script: str):
    """
    :param script: a file name in ``bench/`` (a folder of scripts, not a package).
    :returns: the script loaded as a module.
    """
    spec = importlib.util.spec_from_file_location(f"bench_{Path(script).stem}", ROOT / "bench" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
