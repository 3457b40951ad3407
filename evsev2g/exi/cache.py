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
