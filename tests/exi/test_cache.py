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


def test_a_warm_start_needs_neither_lxml_nor_the_xsds(cache_dir):
    """With the cache filled, the SECC's imports and all three codecs load without importing lxml."""
    code = (
        "import sys, evsev2g.tap\n"
        "from evsev2g.exi import load_codec\n"
        "for name in ('appHandshake', 'din70121', 'iso15118-2'): load_codec(name)\n"
        "print('lxml' in sys.modules)\n"
    )
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(cache_dir))
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    assert first.stdout.strip() == "True"  # built: the XSDs were read
    assert second.stdout.strip() == "False"


def test_cache_command_fills_the_cache(cache_dir):
    """``python -m evsev2g.exi cache`` builds the three codecs into the cache (an install step) and says where."""
    environment = dict(os.environ, EVSEV2G_EXI_CACHE=str(cache_dir))
    done = subprocess.run([sys.executable, "-m", "evsev2g.exi", "cache"], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr
    assert str(cache_dir) in done.stdout
    assert sorted(p.name.split("-")[0] for p in cache_dir.glob("*.pickle")) == ["appHandshake", "din70121", "iso15118"]
