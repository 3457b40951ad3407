"""
The built codec of a schema set, kept on disk between runs.

Building a codec reads the XSDs (with lxml), builds the grammars and
compiles the generated decoders and encoders: about 0.1 s and, at its
peak, tens of MB per schema set.  The result (grammars, constants and
compiled code) is saved once and loaded at the next start, which then
needs neither lxml nor the compiler.

The key is a SHA-256 over everything the result depends on: the bytes of
every ``.xsd`` file beside the set's entry files (the reader follows
includes and imports only there), the source of the engine modules that
shape the grammars and the generated code, the Python implementation and
bytecode magic number, and :data:`FORMAT`.  A changed XSD, engine or
Python therefore never meets a stale entry: it gets a new key.

A missing entry is built in a child process (:func:`build_elsewhere`):
the reading of the XSDs (lxml), the grammar construction and the compiler
then peak there, not in the long-running service, which loads the result
as on any warm start.  Several missing sets build in parallel.  When no
child can be started or it fails, the caller builds in its own process
and says why.

Where: ``$EVSEV2G_EXI_CACHE`` (``off`` disables the cache), else
``$XDG_CACHE_HOME/evsev2g/exi``, else ``~/.cache/evsev2g/exi``.  The entries
are pickles, so they are used only from a directory owned by this user and
writable by nobody else, and only when the file is owned by this user too;
otherwise, and whenever anything goes wrong reading or writing, the codec
is simply built.  Entries are written to a temporary file and renamed, so
a reader never sees half of one; saving an entry removes the set's older
ones.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path

#: Bump when the layout of an entry changes.
FORMAT = 1

#: Seconds a child process may take to build one schema set.
BUILD_TIMEOUT = 120.0

#: ``{(schema set, key): problem}`` of the child builds that failed in this
#: process, not tried again.
_FAILED: dict = {}

#: The engine modules whose source shapes a built codec.
_ENGINE_MODULES = ("bits", "codegen", "errors", "fragment", "grammar", "message", "runtime", "values", "xsd", "cache")


def cache_dir() -> Path | None:
    """:returns: the cache directory, or ``None`` when the cache is off."""
    configured = os.environ.get("EVSEV2G_EXI_CACHE")
    if configured:
        return None if configured.lower() == "off" else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "evsev2g" / "exi"


def key(name: str, files: list[Path]) -> str:
    """
    :param name: the schema set.
    :param files: its entry files.
    :returns: the hex SHA-256 naming the built codec of these inputs.
    """
    digest = hashlib.sha256()
    digest.update(f"{FORMAT} {name} {sys.implementation.cache_tag} ".encode())
    digest.update(importlib.util.MAGIC_NUMBER)
    folders = sorted({Path(f).resolve().parent for f in files})
    for folder in folders:
        for xsd in sorted(folder.glob("*.xsd")):
            digest.update(xsd.name.encode() + b"\0" + xsd.read_bytes() + b"\0")
    here = Path(__file__).resolve().parent
    for module in _ENGINE_MODULES:
        digest.update((here / f"{module}.py").read_bytes())
    return digest.hexdigest()


def _trusted(path: Path, directory: bool) -> bool:
    """Owned by this user, and (a directory) writable by nobody else."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if info.st_uid != os.getuid():
        return False
    if directory:
        return stat.S_ISDIR(info.st_mode) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return stat.S_ISREG(info.st_mode)


def present(name: str, digest: str) -> bool:
    """:returns: whether an entry of that key exists where :func:`load` would trust it (not whether it reads)."""
    folder = cache_dir()
    return folder is not None and _trusted(folder, True) and _trusted(folder / f"{name}-{digest}.pickle", False)


def load(name: str, digest: str):
    """
    :returns: ``(gset, consts, functions, code)`` saved under ``digest``,
        or ``None`` when there is no usable entry.
    """
    folder = cache_dir()
    if folder is None or not _trusted(folder, True):
        return None
    path = folder / f"{name}-{digest}.pickle"
    if not _trusted(path, False):
        return None
    try:
        with open(path, "rb") as file:
            saved_digest, gset, consts, functions, code = pickle.load(file)
        if saved_digest != digest:
            return None
        return gset, consts, functions, marshal.loads(code)
    except Exception:  # noqa: BLE001 - a damaged entry is rebuilt
        return None


def save(name: str, digest: str, gset, consts, functions, code: list) -> None:
    """Save a built codec under ``digest``; any failure leaves the cache as it was."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(folder, True):
            return
        data = pickle.dumps((digest, gset, consts, functions, marshal.dumps(code)), protocol=pickle.HIGHEST_PROTOCOL)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, folder / f"{name}-{digest}.pickle")
        except BaseException:
            os.unlink(temporary)
            raise
        for old in folder.glob(f"{name}-*.pickle"):
            if old.name != f"{name}-{digest}.pickle":
                old.unlink()
    except Exception:  # noqa: BLE001 - the cache is an optimisation only
        return


def usable() -> bool:
    """:returns: whether entries can be saved and loaded (the cache is on, its directory trusted or creatable)."""
    folder = cache_dir()
    if folder is None:
        return False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return _trusted(folder, True)


def build_elsewhere(jobs: list[tuple[str, list[Path], str]], timeout: float = BUILD_TIMEOUT) -> dict[str, str]:
    """
    Build codecs into the cache in child processes, all at once.

    :param jobs: ``(schema set, entry files, key)`` per codec to build.
    :param timeout: seconds to wait for all of them.
    :returns: ``{schema set: problem}`` for each job that did not leave a
        usable entry (an empty dict when all did).
    """
    problems = {name: _FAILED[(name, digest)] for name, _, digest in jobs if (name, digest) in _FAILED}
    jobs = [job for job in jobs if job[0] not in problems]
    if not jobs:
        return problems
    if not usable() or not sys.executable:
        problems.update({name: "no usable codec cache directory" if sys.executable else "no Python executable to run"
                         for name, _, _ in jobs})
        return problems
    import subprocess  # noqa: PLC0415 - only when something is built
    import time  # noqa: PLC0415
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    environment["EVSEV2G_EXI_CACHE"] = str(cache_dir())
    children = {}
    for name, files, digest in jobs:
        command = [sys.executable, "-c", "import sys; from evsev2g.exi.cache import _build_here; _build_here(sys.argv[1:])",
                   name, digest, *map(str, files)]
        try:
            children[name] = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as error:
            problems[name] = f"cannot start a child process to build it ({error})"
    deadline = time.monotonic() + timeout
    for name, child in children.items():
        try:
            _, errors = child.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            problems[name] = f"the child process building it took more than {timeout:g} s"
            continue
        if child.returncode != 0:
            lines = errors.decode(errors="replace").strip().splitlines()
            problems[name] = (f"the child process building it failed (exit status {child.returncode}"
                              f"{': ' + lines[-1] if lines else ''})")
    for name, _, digest in jobs:
        if name not in problems and not present(name, digest):
            problems[name] = "the child process left no cache entry"
    for name, _, digest in jobs:
        if name in problems:
            _FAILED[(name, digest)] = problems[name]
    return problems


def _build_here(arguments: list[str]) -> None:
    """
    Build one codec and save it under its key (the child's side of
    :func:`build_elsewhere`).

    :param arguments: the schema set, the key, the entry files.

    :raises RuntimeError: when the sources do not have that key (before or
        after the build: a file changed meanwhile), or nothing was saved.
    """
    from evsev2g.exi.codec import _build

    name, digest, files = arguments[0], arguments[1], [Path(f) for f in arguments[2:]]
    if key(name, files) != digest:
        raise RuntimeError(f"the sources of {name} no longer have the key asked for")
    built = _build(name, files)
    if key(name, files) != digest:
        raise RuntimeError(f"the sources of {name} changed while it was built")
    save(name, digest, *built)
    if not (cache_dir() / f"{name}-{digest}.pickle").is_file():
        raise RuntimeError(f"could not save the {name} codec in {cache_dir()}")
