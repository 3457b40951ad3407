"""Tests for :mod:`evsev2g.v2gtp`: header and streaming parser."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evsev2g.errors import BadHeader, PayloadTooLarge, UnknownPayloadType
from evsev2g.v2gtp import V2GTPHeader, V2GTPStreamParser, build_frame, parse_header

EXI = 0x8001


def test_build_frame_layout():
    """Version 0x01, inverse 0xFE, type and length big-endian, then the payload [V2G2-156]."""
    assert build_frame(EXI, b"\xaa\xbb\xcc") == bytes.fromhex("01fe800100000003aabbcc")


def test_parse_header():
    """A good header gives payload type and length."""
    assert parse_header(bytes.fromhex("01fe800100000010"), frozenset({EXI}), 100) == V2GTPHeader(EXI, 16)


@pytest.mark.parametrize(
    "header, error, message",
    [
        ("02fe800100000003", BadHeader, "protocol version 0x02 / inverse 0xFE"),
        ("01ff800100000003", BadHeader, "inverse 0xFF"),
        ("ff00800100000003", BadHeader, "protocol version 0xFF"),
        ("01fe700100000003", UnknownPayloadType, "payload type 0x7001 is not accepted here"),
        ("01fe900000000002", UnknownPayloadType, "payload type 0x9000"),
        ("01fe800100000000", BadHeader, "payload length 0"),
        ("01fe800100000065", PayloadTooLarge, "payload length 101 bytes is above the maximum of 100"),
        ("01fe8001ffffffff", PayloadTooLarge, "payload length 4294967295 bytes"),
    ],
)
def test_bad_headers(header, error, message):
    """Bad version/inverse, unknown type, zero or oversize length are errors naming the fault (ISO 15118-4 VTB_V2GTP cases)."""
    with pytest.raises(error, match=message):
        parse_header(bytes.fromhex(header), frozenset({EXI}), 100)


def test_stream_split_byte_by_byte():
    """A frame delivered one byte per read comes out once, whole."""
    parser = V2GTPStreamParser(100)
    frame = build_frame(EXI, b"hello")
    out = []
    for i in range(len(frame)):
        out += list(parser.feed(frame[i : i + 1]))
        assert parser.mid_frame == (i < len(frame) - 1)
    assert out == [(EXI, b"hello")]


def test_stream_several_frames_in_one_read():
    """Several frames in one read come out in order; a trailing partial frame waits."""
    parser = V2GTPStreamParser(100)
    data = build_frame(EXI, b"a") + build_frame(EXI, b"bb") + build_frame(EXI, b"ccc")
    assert list(parser.feed(data + data[:5])) == [(EXI, b"a"), (EXI, b"bb"), (EXI, b"ccc")]
    assert parser.mid_frame
    assert list(parser.feed(data[5:9])) == [(EXI, b"a")]


def test_good_frames_before_a_bad_header_come_out_first():
    """Frames before a bad header are delivered; then the error, and it sticks."""
    parser = V2GTPStreamParser(100)
    frames = parser.feed(build_frame(EXI, b"ok") + bytes.fromhex("02fd800100000001") + b"x")
    assert next(frames) == (EXI, b"ok")
    with pytest.raises(BadHeader):
        next(frames)
    with pytest.raises(BadHeader):
        list(parser.feed(build_frame(EXI, b"again")))


def test_oversize_is_rejected_before_buffering():
    """An oversize length is refused from the header alone, before its payload arrives."""
    parser = V2GTPStreamParser(1000)
    with pytest.raises(PayloadTooLarge):
        list(parser.feed(bytes.fromhex("01fe800100100000")))


@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
)
def test_any_chunking_gives_the_same_frames(payloads, cuts):
    """However the stream is cut into reads, the same frames come out in order."""
    stream = b"".join(build_frame(EXI, p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    parser = V2GTPStreamParser(300)
    out = []
    for start, end in zip(points, points[1:]):
        out += list(parser.feed(stream[start:end]))
    assert out == [(EXI, p) for p in payloads]
    assert not parser.mid_frame
