"""HEPv3 codec (OpenSIPS tracer → us) and the pcap writer: round trips, hostile bytes, stream framing."""

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsconsole_opensips.hep import (
    FAMILY_IPV4, FAMILY_IPV6, PROTO_TCP, PROTO_UDP, TYPE_SIP, HEPError, HEPPacket, HEPStreamDecoder, decode, encode,
)
from opsconsole_opensips.pcap import PcapWriter

INVITE = (b"INVITE sip:1001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
          b"Call-ID: abc@127.0.0.1\r\nCSeq: 1 INVITE\r\nFrom: <sip:1000@x>;tag=1\r\nTo: <sip:1001@x>\r\n"
          b"Content-Length: 0\r\n\r\n")


def packet(**kw) -> HEPPacket:
    base = dict(family=FAMILY_IPV4, proto=PROTO_UDP, src="127.0.0.1", dst="127.0.0.2", src_port=5070, dst_port=5060,
                ts_sec=1_760_000_000, ts_usec=123456, proto_type=TYPE_SIP, payload=INVITE, capture_id=7,
                correlation_id="abc@127.0.0.1")
    return HEPPacket(**(base | kw))


def test_round_trip_ipv4_and_ipv6():
    for p in (packet(), packet(family=FAMILY_IPV6, src="::1", dst="fe80::2", proto=PROTO_TCP)):
        assert decode(encode(p)) == p
    assert decode(encode(packet())).timestamp == pytest.approx(1_760_000_000.123456)


def test_frame_layout_matches_the_spec():
    frame = encode(packet())
    assert frame[:4] == b"HEP3"
    assert struct.unpack("!H", frame[4:6])[0] == len(frame)
    # first chunk: vendor 0, type 1 (IP family), 7 bytes, value 2
    assert frame[6:13] == struct.pack("!HHHB", 0, 1, 7, 2)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=2000), v6=st.booleans(), tcp=st.booleans(),
       sport=st.integers(0, 65535), dport=st.integers(0, 65535), sec=st.integers(0, 2**32 - 1),
       usec=st.integers(0, 999_999), corr=st.text(max_size=40))
def test_round_trip_property(payload, v6, tcp, sport, dport, sec, usec, corr):
    p = packet(family=FAMILY_IPV6 if v6 else FAMILY_IPV4, src="2001:db8::1" if v6 else "10.0.0.1",
               dst="2001:db8::2" if v6 else "10.0.0.2", proto=PROTO_TCP if tcp else PROTO_UDP,
               src_port=sport, dst_port=dport, ts_sec=sec, ts_usec=usec, payload=payload, correlation_id=corr)
    assert decode(encode(p)) == p


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_heperror(data):
    try:
        decode(data)
    except HEPError:
        pass


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(1, 200), flip=st.integers(0, 255), at=st.integers(0, 250))
def test_damaged_frames_never_raise_anything_else(cut, flip, at):
    frame = bytearray(encode(packet()))
    frame[at % len(frame)] ^= flip
    for data in (bytes(frame), bytes(frame[:-cut])):
        try:
            decode(data)
        except HEPError:
            pass


@pytest.mark.parametrize("data, words", [
    (b"\x02\x10\x02\x11" + b"\0" * 30, "HEPv2 is not supported"),
    (b"\x01\x10", "HEPv1 is not supported"),
    (b"EEP3\x00\x06", "not a HEPv3 frame"),
    (b"HEP3\x00\x03", "less than its own header"),
    (b"HEP3\x00\x09\x00\x00\x00", "chunk header cut"),
    (b"HEP3\x00\x0c\x00\x00\x00\x01\x00\x20", "declares 32 bytes"),
    (b"HEP3", "too short"),
])
def test_malformed_frames_say_what_is_wrong(data, words):
    with pytest.raises(HEPError, match=words):
        decode(data)


def test_missing_fields_are_named():
    frame = encode(packet())
    without_payload = frame[:frame.index(INVITE) - 6]
    without_payload = b"HEP3" + struct.pack("!H", len(without_payload)) + without_payload[6:]
    with pytest.raises(HEPError, match="without a payload"):
        decode(without_payload)


def test_hepv2_hint_names_the_fix():
    with pytest.raises(HEPError) as exc:
        decode(b"\x02\x10\x02\x11" + b"\0" * 30)
    assert "version=3" in exc.value.hint


def test_stream_decoder_reassembles_frames_split_anywhere():
    frames = [encode(packet(ts_usec=i)) for i in range(5)]
    stream = b"".join(frames)
    for step in (1, 7, 100, len(stream)):
        decoder = HEPStreamDecoder()
        got = []
        for start in range(0, len(stream), step):
            got += decoder.feed(stream[start:start + step])
        assert [p.ts_usec for p in got] == list(range(5))
        assert decoder.pending == 0


def test_stream_decoder_refuses_garbage():
    with pytest.raises(HEPError):
        HEPStreamDecoder().feed(b"GET / HTTP/1.1\r\n")


def _pcap_records(data: bytes):
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4
    offset, records = 24, []
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[offset:offset + 16])
        records.append((sec, usec, data[offset + 16: offset + 16 + incl]))
        offset += 16 + incl
    return records


def test_pcap_frames_carry_the_message_with_valid_checksums():
    writer = PcapWriter()
    data = writer.header() + writer.record(packet()) + writer.record(packet(proto=PROTO_TCP))
    records = _pcap_records(data)
    assert len(records) == 2
    for _sec, _usec, frame in records:
        assert frame.endswith(INVITE)
        ip = frame[14:34]
        assert sum(struct.unpack("!10H", ip)) % 0xFFFF == 0  # IPv4 header checksum verifies
        assert ip[9] in (17, 6)


def test_tshark_reads_the_pcap_as_sip(tmp_path):
    if not shutil.which("tshark"):
        if os.environ.get("CI") or os.environ.get("OPSCONSOLE_REQUIRE_REAL"):
            pytest.fail("tshark is missing: .ci/run installs it")
        pytest.skip("tshark not installed (apt-get install tshark)")
    writer = PcapWriter()
    path = tmp_path / "trace.pcap"
    messages = [packet(ts_usec=1), packet(proto=PROTO_TCP, ts_usec=2),
                packet(family=FAMILY_IPV6, src="::1", dst="::1", ts_usec=3)]
    path.write_bytes(writer.header() + b"".join(writer.record(m) for m in messages))
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID",
                          "-e", "sip.Method", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": str(tmp_path)})
    lines = [line.split("\t") for line in out.stdout.splitlines()]
    assert lines == [["abc@127.0.0.1", "INVITE"]] * 3, out.stderr[-500:]


# Frames captured from the real OpenSIPS builds' tracer (trace_start scope m, an OPTIONS from a loopback UA):
# chunk order 1,2,7,8,9,10,11,12,3,4,15,17 (addresses after the ports), capture id 1, correlation id = Call-ID.
REAL_FRAMES = sorted((Path(__file__).parent / "fixtures" / "hep").glob("opensips-*.hep"))


@pytest.mark.parametrize("path", REAL_FRAMES, ids=[p.stem for p in REAL_FRAMES])
def test_frames_of_the_real_opensips_tracer(path):
    packet = decode(path.read_bytes())
    assert (packet.family, packet.proto, packet.src, packet.dst, packet.proto_type) == (
        FAMILY_IPV4, PROTO_UDP, "127.0.0.1", "127.0.0.1", TYPE_SIP)
    assert packet.capture_id == 1 and packet.correlation_id == "opt-1"
    assert packet.payload.startswith(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n") and packet.ts_sec > 1_700_000_000
    assert decode(encode(packet)) == packet
