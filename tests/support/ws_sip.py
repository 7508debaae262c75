"""A minimal SIP-over-WebSocket (RFC 7118) user agent for tests, adapted from ../shared/lab/ws_client.py.

No third-party WebSocket library: the RFC 6455 client handshake and framing are done here on a plain
socket, and one reader thread per UA answers what OpenSIPS sends (INVITE -> 200 with a WebRTC-like SDP,
BYE/OPTIONS -> 200, ACK ignored), so UDP->WS calls get answered.  Like JsSIP/SIP.js the Contact host is
"<random>.invalid;transport=ws" (OpenSIPS fixes it with fix_nated_contact()).

    ua = WsUA(opensips.ws_url, "ws2000", domain="127.0.0.1")
    ua.register(expires=3600)           # -> 200, or raises
    code, callid = ua.call("1002")      # INVITE with a WebRTC offer, ACKs, keeps the call up
    ua.close()
"""

from __future__ import annotations

import base64
import os
import queue
import random
import secrets
import socket
import string
import struct
import threading
from urllib.parse import urlparse

from support.rtpengine_daemon import webrtc_sdp

USER_AGENT = "opsconsole-test-ws (WebRTC-like)"


def _token(length: int = 10) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def parse_sip(raw: str) -> tuple[str, list[tuple[str, str]], str]:
    head, _, body = raw.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers, body


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


class WebSocket:
    """Client side of RFC 6455 for text frames: masked sends, unmasked receives, ping answered."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parsed = urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parsed.path or '/'} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: sip\r\nOrigin: http://127.0.0.1\r\n\r\n")  # proto_ws requires Origin
        self.sock.sendall(request.encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("WebSocket handshake: connection closed")
            reply += chunk
        status = reply.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"WebSocket handshake refused: {status!r}")
        self._buffer = reply.split(b"\r\n\r\n", 1)[1]
        self._send_lock = threading.Lock()
        self.sock.settimeout(None)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self._send_lock:
            self.sock.sendall(head + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("WebSocket closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def receive_text(self) -> str:
        """The next text message (pings are answered on the way)."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if second & 0x80 else None
            payload = self._read(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = first & 0x0F
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("WebSocket closed by the server")
            elif opcode in (0x1, 0x2):
                return payload.decode(errors="replace")

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class WsUA:
    """One SIP user on one WebSocket; a reader thread routes replies by Via branch and answers requests."""

    def __init__(self, url: str, user: str, domain: str = "127.0.0.1") -> None:
        self.user, self.domain = user, domain
        self.host = _token(12) + ".invalid"
        self.contact = f"<sip:{_token(8)}@{self.host};transport=ws>"
        self.reg_callid = _token(22)
        self.reg_tag = _token(10)
        self.reg_cseq = 0
        self.answered: list[str] = []  # Call-IDs of the INVITEs we answered
        self._waiters: dict[str, queue.Queue] = {}
        self._media: list[socket.socket] = []
        self.ws = WebSocket(url)
        self._reader = threading.Thread(target=self._read_loop, name=f"ws-ua-{user}", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ requests we send

    def _request(self, lines: list[str], body: str = "", content_type: str | None = None) -> queue.Queue:
        branch = "z9hG4bK" + _token(12)
        replies: queue.Queue = queue.Queue()
        self._waiters[branch] = replies
        head = [lines[0], f"Via: SIP/2.0/WS {self.host};branch={branch}", "Max-Forwards: 70", *lines[1:]]
        if content_type:
            head.append(f"Content-Type: {content_type}")
        head += [f"User-Agent: {USER_AGENT}", f"Content-Length: {len(body.encode())}"]
        self.ws.send_text("\r\n".join(head) + "\r\n\r\n" + body)
        return replies

    @staticmethod
    def _final(replies: queue.Queue, timeout: float) -> tuple[int, list[tuple[str, str]], str]:
        while True:
            start, headers, body = replies.get(timeout=timeout)
            code = int(start.split()[1])
            if code >= 200:
                return code, headers, body

    def register(self, expires: int = 3600, timeout: float = 10.0) -> int:
        self.reg_cseq += 1
        replies = self._request([
            f"REGISTER sip:{self.domain} SIP/2.0", f"To: <sip:{self.user}@{self.domain}>",
            f"From: <sip:{self.user}@{self.domain}>;tag={self.reg_tag}", f"Call-ID: {self.reg_callid}",
            f"CSeq: {self.reg_cseq} REGISTER", f"Contact: {self.contact};expires={expires}",
            "Supported: path,gruu,outbound"])
        code, _, _ = self._final(replies, timeout)
        if code != 200:
            raise RuntimeError(f"{self.user}: REGISTER answered {code}")
        return code

    def _media_port(self) -> int:
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))  # the ICE host candidate; what rtpengine sends is never read
        self._media.append(sink)
        return sink.getsockname()[1]

    def call(self, target: str, timeout: float = 20.0) -> tuple[int, str]:
        """INVITE target with a WebRTC offer, ACK the final answer; the call stays up until close()."""
        callid, from_tag = _token(24), _token(10)
        replies = self._request([
            f"INVITE sip:{target}@{self.domain} SIP/2.0", f"To: <sip:{target}@{self.domain}>",
            f"From: <sip:{self.user}@{self.domain}>;tag={from_tag}", f"Call-ID: {callid}", "CSeq: 1 INVITE",
            f"Contact: {self.contact}", "Allow: INVITE,ACK,CANCEL,BYE,OPTIONS"],
            webrtc_sdp(self._media_port(), "actpass"), "application/sdp")
        code, headers, _ = self._final(replies, timeout)
        to = header(headers, "to")
        routes: list[str] = []
        for key, value in headers:
            if key == "record-route":
                routes += [part.strip() for part in value.split(",")]
        routes.reverse()
        contact = header(headers, "contact") or f"<sip:{target}@{self.domain}>"
        uri = contact[contact.index("<") + 1:contact.index(">")] if "<" in contact else contact.split(";")[0]
        if code >= 300:
            uri, routes = f"sip:{target}@{self.domain}", []
        ack = [f"ACK {uri} SIP/2.0", f"Via: SIP/2.0/WS {self.host};branch=z9hG4bK{_token(12)}", "Max-Forwards: 70",
               *[f"Route: {route}" for route in routes], f"To: {to}",
               f"From: <sip:{self.user}@{self.domain}>;tag={from_tag}", f"Call-ID: {callid}", "CSeq: 1 ACK",
               "Content-Length: 0"]
        self.ws.send_text("\r\n".join(ack) + "\r\n\r\n")
        return code, callid

    # ------------------------------------------------------------ what OpenSIPS sends us

    def _reply(self, headers: list[tuple[str, str]], code: int, reason: str, to_tag: str | None = None,
               body: str = "", extra: tuple[str, ...] = ()) -> str:
        out = [f"SIP/2.0 {code} {reason}"]
        out += [f"Via: {value}" for key, value in headers if key == "via"]
        out += [f"Record-Route: {value}" for key, value in headers if key == "record-route"]
        to = header(headers, "to") or ""
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        out += [f"From: {header(headers, 'from')}", f"To: {to}", f"Call-ID: {header(headers, 'call-id')}",
                f"CSeq: {header(headers, 'cseq')}", *extra]
        if body:
            out.append("Content-Type: application/sdp")
        out += [f"User-Agent: {USER_AGENT}", f"Content-Length: {len(body.encode())}"]
        return "\r\n".join(out) + "\r\n\r\n" + body

    def _on_request(self, start: str, headers: list[tuple[str, str]]) -> None:
        method = start.split()[0]
        if method == "ACK":
            return
        if method == "INVITE":
            answer = webrtc_sdp(self._media_port(), "active")
            self.ws.send_text(self._reply(headers, 200, "OK", secrets.token_hex(5), answer,
                                          (f"Contact: {self.contact}", "Allow: INVITE,ACK,CANCEL,BYE,OPTIONS")))
            self.answered.append(header(headers, "call-id") or "")
            return
        self.ws.send_text(self._reply(headers, 200, "OK"))

    def _read_loop(self) -> None:
        try:
            while True:
                start, headers, body = parse_sip(self.ws.receive_text())
                if start.startswith("SIP/2.0"):
                    via = header(headers, "via") or ""
                    branch = via.split("branch=")[1].split(";")[0] if "branch=" in via else ""
                    waiter = self._waiters.get(branch)
                    if waiter:
                        waiter.put((start, headers, body))
                else:
                    self._on_request(start, headers)
        except (OSError, ValueError, IndexError):
            return  # closed: close() or the daemon went away

    def close(self) -> None:
        self.ws.close()
        for sink in self._media:
            sink.close()
        self._reader.join(2)
