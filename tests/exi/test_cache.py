"""
The codec cache (:mod:`evsev2g.exi.cache`): a cached codec is the built
codec, a changed XSD never meets a stale one, and an untrusted or damaged
cache is never used.
"""

import os
import shutil
import subprocess
import sys

import pytest

from evsev2g.exi import cache
from evsev2g.exi import codec as codec_module
from evsev2g.exi.codec import SCHEMA_DIR, Codec
from evsev2g.testing import app_protocol_request

REQUEST = app_protocol_request(("urn:din:70121:2012:MsgDef", 2, 0, 1, 20))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private cache directory for the test (mode 0700, as the cache makes it)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("EVSEV2G_EXI_CACHE", str(folder))
    return folder


@pytest.fixture
def schemas(tmp_path):
    """A copy of the project's schema folders that the test may change."""
    copy = tmp_path / "xsd"
    shutil.copytree(SCHEMA_DIR, copy)
    return copy


def test_first_build_saves_and_the_next_loads_the_same_codec(cache_dir, golden):
    """The first codec is built and saved; the second comes from the cache and encodes and decodes every golden vector alike."""
    built = Codec("din70121")
    [entry] = cache_dir.glob("din70121-*.pickle")
    assert oct(cache_dir.stat().st_mode & 0o777) == "0o700"
    loaded = Codec("din70121")
    assert cache.load("din70121", cache.key("din70121", [SCHEMA_DIR / "din70121/V2G_CI_MsgDef.xsd"])) is not None
    for vector in golden:
        if vector["protocol"] != "din70121" or "fragment" in vector:
            continue
        data = bytes.fromhex(vector["exi_hex"])
        assert loaded.decode(data) == built.decode(data)
        assert loaded.encode(built.decode(data)) == built.encode(built.decode(data))
    assert entry.exists()


def test_a_changed_xsd_never_meets_a_stale_codec(cache_dir, schemas, monkeypatch):
    """Widening Priority's range in the XSD gives a new key and a codec that encodes Priority the new way."""
    before = Codec("appHandshake", schema_dir=schemas).encode(REQUEST)
    path = schemas / "appHandshake" / "V2G_CI_AppProtocol.xsd"
    text = path.read_text()
    assert '<xs:maxInclusive value="20"/>' in text
    path.write_text(text.replace('<xs:maxInclusive value="20"/>', '<xs:maxInclusive value="200"/>'))
    after = Codec("appHandshake", schema_dir=schemas).encode(REQUEST)
    monkeypatch.setenv("EVSEV2G_EXI_CACHE", "off")
    fresh = Codec("appHandshake", schema_dir=schemas).encode(REQUEST)
    assert after == fresh and after != before
    assert len(list(cache_dir.glob("appHandshake-*.pickle"))) == 1  # the older entry was removed


def test_an_untrusted_directory_is_not_used(cache_dir):
    """A cache directory writable by others is neither read nor written: the codec is built."""
    cache_dir.mkdir(mode=0o700)
    cache_dir.chmod(0o777)
    Codec("appHandshake")
    assert list(cache_dir.iterdir()) == []
    digest = cache.key("appHandshake", [SCHEMA_DIR / "appHandshake/V2G_CI_AppProtocol.xsd"])
    assert cache.load("appHandshake", digest) is None


def test_a_damaged_entry_is_rebuilt(cache_dir):
    """Garbage under the right name is ignored: the codec is built and a good entry replaces it."""
    Codec("appHandshake")
    [entry] = cache_dir.glob("appHandshake-*.pickle")
    entry.write_bytes(b"not a pickle")
    digest = entry.name[len("appHandshake-"):-len(".pickle")]
    assert cache.load("appHandshake", digest) is None
    codec = Codec("appHandshake")
    assert codec.decode(codec.encode(REQUEST)).AppProtocol[0].Priority == 20
    assert cache.load("appHandshake", digest) is not None


def test_neither_a_cold_nor_a_warm_start_imports_lxml(cache_dir):
    """
    The SECC's imports and all three codecs never import lxml: with the
    cache empty they are built in child processes and loaded; then loaded.
    """
    code = (
        "import sys, evsev2g.tap\n"
        "from evsev2g.exi import load_codec\n"
        "for name in ('appHandshake', 'din70121', 'iso15118-2'): load_codec(name)\n"
        "print('lxml' in sys.modules)\n"
    )
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(cache_dir))
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    assert sorted(p.name.split("-")[0] for p in cache_dir.glob("*.pickle")) == ["appHandshake", "din70121", "iso15118"]
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    assert first.stdout.strip() == "False"  # built in children, then loaded
    assert second.stdout.strip() == "False"
    assert "CacheWarning" not in first.stderr + second.stderr


def test_cache_command_fills_the_cache(cache_dir):
    """``python -m evsev2g.exi cache`` builds the three codecs and the xmldsig fragment grammar into the cache (an install step) and says where."""
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(cache_dir))
    done = subprocess.run([sys.executable, "-m", "evsev2g.exi", "cache"], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr
    assert str(cache_dir) in done.stdout
    assert sorted(p.name.split("-")[0] for p in cache_dir.glob("*.pickle")) == ["appHandshake", "din70121", "iso15118", "xmldsig"]


def test_prepare_builds_missing_codecs_in_child_processes(cache_dir):
    """
    ``prepare`` fills an empty cache from child processes: the process that
    asked never imports lxml or the code generator, and its codecs then load
    from the entries.
    """
    code = (
        "import sys\n"
        "from evsev2g.exi.codec import load_codec, prepare\n"
        "print(prepare(['appHandshake', 'din70121']))\n"
        "codec = load_codec('din70121')\n"
        "print(sorted(m for m in sys.modules if m.startswith('lxml') or m.endswith('codegen')))\n"
    )
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(cache_dir))
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                          env=environment, check=True)
    assert done.stdout.split("\n")[:2] == ["{}", "[]"]
    assert sorted(p.name.split("-")[0] for p in cache_dir.glob("*.pickle")) == ["appHandshake", "din70121"]


def test_prepare_makes_the_signature_grammar_entry_of_iso15118_2(cache_dir):
    """
    With ISO 15118-2, ``prepare`` also makes the xmldsig fragment grammar's
    entry, so the first signature check of a session loads it instead of
    building it (in the middle of a session).
    """
    assert codec_module.prepare(["iso15118-2"]) == {}
    assert sorted(p.name.split("-")[0] for p in cache_dir.glob("*.pickle")) == ["iso15118", "xmldsig"]
    codec = Codec("iso15118-2")
    [entry] = cache_dir.glob("xmldsig-*.pickle")
    before = entry.stat().st_mtime_ns
    assert codec._fragment_engine("xmldsig").name == "xmldsig"
    assert entry.stat().st_mtime_ns == before  # loaded, not rebuilt


@pytest.fixture
def failing_python(tmp_path, monkeypatch):
    """``sys.executable`` replaced by a program that fails the way a broken child build would."""
    program = tmp_path / "python-that-fails"
    program.write_text("#!/bin/sh\necho 'MemoryError: cannot build here' >&2\nexit 3\n")
    program.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(program))
    monkeypatch.setattr(cache, "_FAILED", {})
    return program


def test_a_failing_child_build_is_reported_and_the_codec_built_here(cache_dir, failing_python):
    """
    A child that fails is named with its exit status and last error line,
    by ``prepare`` and by a ``CacheWarning`` when the codec is loaded; the
    codec is then built in this process and works, and its entry is saved.
    """
    problems = codec_module.prepare(["appHandshake"])
    assert problems == {"appHandshake": "the child process building it failed (exit status 3: "
                                        "MemoryError: cannot build here)"}
    with pytest.warns(codec_module.CacheWarning, match="exit status 3: MemoryError: cannot build here"):
        codec = Codec("appHandshake")
    assert codec.decode(codec.encode(REQUEST)).AppProtocol[0].Priority == 20
    assert [p.name.split("-")[0] for p in cache_dir.glob("*.pickle")] == ["appHandshake"]


def test_a_child_never_saves_under_a_key_its_sources_do_not_have(cache_dir, schemas):
    """The child build is told the key; when the XSDs no longer have it (changed meanwhile) it fails and saves nothing."""
    files = [schemas / "appHandshake" / "V2G_CI_AppProtocol.xsd"]
    digest = cache.key("appHandshake", files)
    files[0].write_text(files[0].read_text().replace('<xs:maxInclusive value="20"/>', '<xs:maxInclusive value="30"/>'))
    with pytest.raises(RuntimeError, match="no longer have the key"):
        cache._build_here(["appHandshake", digest, str(files[0])])
    assert not cache_dir.exists() or not list(cache_dir.glob("*.pickle"))
    problems = cache.build_elsewhere([("appHandshake", files, digest)])
    assert "exit status 1: RuntimeError: the sources of appHandshake no longer have the key" in problems["appHandshake"]
    assert cache.load("appHandshake", digest) is None


def test_a_loaded_codec_finds_its_own_grammars(cache_dir):
    """
    After loading from the cache, the grammar set's tables are keyed by this
    process's type objects: asking for a type's grammar (as XML conversion
    does) returns the one the generated code uses instead of building a copy.
    """
    Codec("iso15118-2")
    loaded = Codec("iso15118-2")
    gset = loaded.grammars
    count = len(gset.types)
    for grammar in list(gset.types.values()):
        assert gset.grammar(grammar.type) is grammar
    message = loaded.decode(Codec("iso15118-2").encode(Codec("iso15118-2").from_xml(
        b'<V2G_Message xmlns="urn:iso:15118:2:2013:MsgDef" xmlns:h="urn:iso:15118:2:2013:MsgHeader" '
        b'xmlns:b="urn:iso:15118:2:2013:MsgBody"><Header><h:SessionID>0A</h:SessionID></Header>'
        b'<Body><b:SessionStopReq><b:ChargingSession>Terminate</b:ChargingSession></b:SessionStopReq></Body>'
        b'</V2G_Message>')))
    loaded.to_xml(message)
    assert len(gset.types) == count


def test_compact_code_keeps_behaviour_and_line_numbers():
    """
    A chunk that only defines a function is kept as that function's code,
    made into the function by ``define``; other chunks run as they are.
    Column positions go, line numbers stay (tracebacks name the line).
    """
    source = (
        "def double(a, b):\n"
        "    values = [i * 2 for i in range(a)]\n"
        "    if b:\n"
        "        return sum(values)\n"
        "    raise ValueError(a)\n"
    )
    plain = compile("\n" * 4000 + source, "<generated>", "exec")
    other = compile("TABLE = {1: 2}\n", "<generated>", "exec")
    kept = cache.compact([plain, other])
    assert kept[0].co_name == "double" and kept[1].co_name == "<module>"
    function_code = plain.co_consts[0]
    assert [p[0] for p in kept[0].co_positions()] == [p[0] for p in function_code.co_positions()]
    assert len(kept[0].co_linetable) < len(function_code.co_linetable)
    namespace: dict = {}
    cache.define(kept, namespace)
    assert namespace["double"](3, True) == 6 and namespace["TABLE"] == {1: 2}
    with pytest.raises(ValueError) as raised:
        namespace["double"](3, False)
    assert raised.traceback[-1].lineno + 1 == 4005


def test_equal_constant_tables_are_saved_once_and_only_equal_ones(cache_dir):
    """Equal plain tables share one object in an entry; 1, 1.0 and True are told apart."""
    consts = {"C1": {3: (0, 1)}, "C2": {3: (0, 1)}, "C3": {3: (0, True)}, "C4": {3: (0, 1.0)}, "T5": (1, 2), "T6": (1, 2)}

    class NoTypes:
        types: dict = {}

    cache._slim(NoTypes(), consts)
    assert consts["C1"] is consts["C2"] and consts["T5"] is consts["T6"]
    assert consts["C3"] is not consts["C1"] and consts["C4"] is not consts["C1"]
    assert consts["C3"] == {3: (0, True)}


def test_a_piece_compiled_alone_and_moved_has_the_lines_of_one_compiled_in_place():
    """``at_line`` gives a definition compiled on its own the positions it has when compiled at its place in the module."""
    piece = "def pick(table, key):\n    found = [v for k, v in table if k == key]\n    return found[0]\n"
    in_place = compile("\n" * 1234 + piece, "<generated>", "exec").co_consts[0]
    moved = cache.at_line(compile(piece, "<generated>", "exec"), 1234).co_consts[0]

    def positions(code):
        nested = [positions(c) for c in code.co_consts if hasattr(c, "co_positions")]
        return code.co_firstlineno, list(code.co_positions()), nested

    assert positions(moved) == positions(in_place)
