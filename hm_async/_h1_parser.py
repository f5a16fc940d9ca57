"""Incremental parser for the HTTP/1.1 answers to the GETs of :mod:`hm_async._h1_pool`.

Why not aiohttp's parser: it is built to feed ``StreamReader`` objects and a protocol that
the lean lane does not have, and its request path around it is what costs the CPU. This
parser only has to frame answers to GET requests (RFC 9112 section 6.3), so it stays small:

* the status line and header fields, at most :data:`MAX_HEAD_BYTES` in all; obsolete line
  folding, fields without a colon or names with whitespace are refused (request smuggling
  defences, as in RFC 9112 section 5);
* interim ``1xx`` answers are skipped; ``204`` and ``304`` have no body;
* ``Transfer-Encoding: chunked`` (extensions and trailers ignored; no other transfer coding,
  since none is asked for), a single ``Content-Length`` (conflicting or invalid values
  refused), or, with neither, the body runs until the server closes the connection;
* one ``Content-Encoding``, gzip, x-gzip or deflate, is inflated (stacked codings are
  refused); the body limit applies both to the bytes on the wire and to the inflated size,
  so a small compressed bomb cannot exhaust memory.

The common case -- a whole answer with ``Content-Length`` in one ``data_received`` call --
takes one ``find``, one split and one slice; only split answers are copied into a buffer.
"""

from __future__ import annotations

import zlib

from multidict import CIMultiDict, CIMultiDictProxy

from ._response import Response

__all__ = ["MAX_HEAD_BYTES", "ParsedResponse", "ProtocolError", "Response", "ResponseParser"]

#: Status line plus header fields. HM's answers carry a few hundred bytes of headers;
#: aiohttp's own limit is 8 KB per line.
MAX_HEAD_BYTES = 64 * 1024

#: Interim answers (100 Continue, 103 Early Hints) skipped before the real one; a server
#: sending more is broken or hostile.
MAX_INTERIM_ANSWERS = 10

_NO_BODY_STATUSES = frozenset({204, 304})
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.1 answer (the connection is unusable)."""


class ParsedResponse(Response):
    """One complete answer; ``keep_alive`` says whether its connection may be reused.

    A :class:`Response` itself, so the transport hands it on without copying."""

    __slots__ = ("keep_alive",)

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes,
                 keep_alive: bool) -> None:
        super().__init__(status, headers, body)
        self.keep_alive = keep_alive


# parser states
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS, _UNTIL_EOF = range(7)


class ResponseParser:
    """Feed it bytes with :meth:`feed`; it returns the answer once it is complete.

    One parser serves one connection for its whole life; after each complete answer it is
    ready for the next. ``started`` tells whether any byte of the current answer arrived
    (a pooled connection closed before that never carried the request to the server).
    """

    __slots__ = ("_body", "_buf", "_encoding", "_headers", "_interim", "_keep_alive", "_max_body",
                 "_remaining", "_state", "_status", "started")

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._buf = bytearray()
        self._body = bytearray()
        self._state = _HEAD
        self._status = 0
        self._headers: CIMultiDictProxy[str] | None = None
        self._encoding = ""
        self._keep_alive = True
        self._remaining = 0
        self._interim = 0
        self.started = False

    def feed(self, data: bytes) -> ParsedResponse | None:
        """Take the next bytes from the socket; the answer when it is complete, else None.

        Raises :class:`ProtocolError` for bytes that are not a valid answer, including
        bytes after a complete answer (a GET gets exactly one).
        """
        self.started = True
        while True:  # loops only past interim 1xx answers (a loop: a flood of them is no
            # reason for a RecursionError)
            if self._state == _HEAD and not self._buf:
                # fast path: the whole head (and usually the whole body) in this one chunk
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    self._buf += data
                    self._check_head_size()
                    return None
                self._start(data[:end])
                rest = data[end + 4:] if len(data) > end + 4 else b""
                if self._state == _LENGTH and len(rest) >= self._remaining:
                    if len(rest) > self._remaining:
                        raise ProtocolError("bytes after the end of the answer")
                    return self._finish(rest)
                if self._state == _HEAD:  # an interim 1xx answer was skipped
                    if not rest:
                        return None
                    data = rest
                    continue
                return self._body_bytes(rest) if rest else None
            if self._state == _HEAD:
                self._buf += data
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    self._check_head_size()
                    return None
                head = bytes(self._buf[:end])
                rest = bytes(self._buf[end + 4:])
                self._buf.clear()
                self._start(head)
                if self._state == _HEAD:
                    if not rest:
                        return None
                    data = rest
                    continue
                if self._state == _LENGTH and len(rest) == self._remaining:
                    return self._finish(rest)
                return self._body_bytes(rest) if rest else None
            return self._body_bytes(data)

    def feed_eof(self) -> ParsedResponse | None:
        """The server closed the connection: the answer if that is how its body ends."""
        if self._state == _UNTIL_EOF:
            body = bytes(self._body)
            self._body.clear()
            return self._finish(body)
        if self.started:
            raise ProtocolError("connection closed before the answer was complete")
        return None

    # -- internals -------------------------------------------------------------------------

    def _check_head_size(self) -> None:
        if len(self._buf) > MAX_HEAD_BYTES:
            raise ProtocolError(f"answer head longer than {MAX_HEAD_BYTES} bytes")

    def _start(self, head: bytes) -> None:
        """Parse a head and pick the body's framing."""
        if len(head) > MAX_HEAD_BYTES:
            raise ProtocolError(f"answer head longer than {MAX_HEAD_BYTES} bytes")
        lines = head.split(b"\r\n")
        # RFC 9110 5.5: a field value with CR, LF or NUL must be refused. Every CR, LF and
        # NUL is one of the line breaks split on above, or there is a stray one.
        if len(head) - len(head.translate(None, b"\r\n\0")) != 2 * (len(lines) - 1):
            raise ProtocolError("bare CR, LF or a NUL in the answer head")
        line = lines[0]
        if not line.startswith(b"HTTP/1.") or len(line) < 12 or line[12:13] not in (b"", b" "):
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:40]!r}")
        code = line[9:12]
        if not code.isdigit() or line[8:9] != b" ":
            raise ProtocolError(f"bad status line: {line[:40]!r}")
        status = int(code)
        if status < 100:
            raise ProtocolError(f"bad status code {status}")
        http10 = line[7:8] == b"0"
        pairs: list[tuple[str, str]] = []
        length: bytes | None = None
        chunked = False
        encoding = ""
        keep_alive = not http10
        close = False
        for field in lines[1:]:
            name, colon, value = field.partition(b":")
            if not colon or not name or name != name.strip() or b" " in name or b"\t" in name:
                raise ProtocolError(f"malformed header field {field[:40]!r}")
            value = value.strip(b" \t")
            key = name.lower()
            if key == b"content-length":
                if length is not None and length != value:
                    raise ProtocolError("conflicting Content-Length values")
                length = value
            elif key == b"transfer-encoding":
                # hm_async sends no TE header, so only plain chunked is acceptable; any
                # other coding (or a list, or a second field) is refused, not guessed at
                if chunked or value.lower() != b"chunked":
                    raise ProtocolError(f"unsupported Transfer-Encoding {value[:40]!r}")
                chunked = True
            elif key == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    close = True
                elif b"keep-alive" in tokens:
                    keep_alive = True
            elif key == b"content-encoding":
                coding = value.lower().decode("latin-1")
                if coding != "identity":
                    if encoding:  # one coding is all we advertise and all we undo
                        raise ProtocolError("more than one Content-Encoding")
                    encoding = coding
            pairs.append((name.decode("latin-1"), value.decode("latin-1")))
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("unexpected protocol switch (101)")
            self._interim += 1
            if self._interim > MAX_INTERIM_ANSWERS:
                raise ProtocolError(f"more than {MAX_INTERIM_ANSWERS} interim (1xx) answers")
            return  # interim answer: the real one follows; state stays _HEAD
        self._status = status
        self._headers = CIMultiDictProxy(CIMultiDict(pairs))
        self._encoding = encoding
        if encoding and encoding not in ("gzip", "x-gzip", "deflate"):
            raise ProtocolError(f"unsupported Content-Encoding {encoding!r}")
        self._keep_alive = keep_alive and not close
        if status in _NO_BODY_STATUSES:
            self._state = _LENGTH
            self._remaining = 0
        elif chunked:
            # RFC 9112 6.3: Transfer-Encoding overrides Content-Length
            self._state = _CHUNK_SIZE
            if length is not None or http10:
                # (RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 answer is faulty framing)
                self._keep_alive = False
        elif length is not None:
            if not length.isdigit():
                raise ProtocolError(f"invalid Content-Length {length[:20]!r}")
            digits = length.lstrip(b"0")
            if len(digits) > 18:  # int() refuses more than 4300 digits with a ValueError
                raise ProtocolError(self._too_big())
            self._remaining = int(digits or b"0")
            if self._remaining > self._max_body:
                raise ProtocolError(self._too_big())
            self._state = _LENGTH
        else:
            self._state = _UNTIL_EOF
            self._keep_alive = False

    def _body_bytes(self, data: bytes) -> ParsedResponse | None:
        """Consume body bytes in the current framing state."""
        state = self._state
        if state == _LENGTH:
            if len(data) > self._remaining:
                raise ProtocolError("bytes after the end of the answer")
            self._body += data
            self._remaining -= len(data)
            if self._remaining:
                return None
            body = bytes(self._body)
            self._body.clear()
            return self._finish(body)
        if state == _UNTIL_EOF:
            self._body += data
            if len(self._body) > self._max_body:
                raise ProtocolError(self._too_big())
            return None
        return self._chunked(data)

    def _chunked(self, data: bytes) -> ParsedResponse | None:
        buf = self._buf
        buf += data
        pos = 0
        while True:
            state = self._state
            if state == _CHUNK_DATA:
                take = min(self._remaining, len(buf) - pos)
                self._body += buf[pos:pos + take]
                pos += take
                self._remaining -= take
                if self._remaining:
                    break
                self._state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if len(buf) - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
                pos += 2
                self._state = _CHUNK_SIZE
            else:  # _CHUNK_SIZE or _TRAILERS: one line at a time
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if len(buf) - pos > MAX_HEAD_BYTES:
                        raise ProtocolError("chunk size line or trailer too long")
                    break
                line = bytes(buf[pos:end])
                pos = end + 2
                if state == _TRAILERS:
                    if line:
                        continue  # trailer fields are ignored
                    if pos != len(buf):
                        raise ProtocolError("bytes after the end of the answer")
                    buf.clear()
                    body = bytes(self._body)
                    self._body.clear()
                    return self._finish(body)
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if not size_text or not _HEX_DIGITS.issuperset(size_text):
                    # int(_, 16) alone would also take "0x10", "-1", "1_0" or "\v5"
                    raise ProtocolError(f"bad chunk size line {line[:20]!r}")
                size = int(size_text, 16)
                if size == 0:
                    self._state = _TRAILERS
                    continue
                if len(self._body) + size > self._max_body:
                    raise ProtocolError(self._too_big())
                self._remaining = size
                self._state = _CHUNK_DATA
        del buf[:pos]
        return None

    def _finish(self, body: bytes) -> ParsedResponse:
        if self._encoding:
            body = self._inflate(body)
        headers = self._headers
        assert headers is not None
        response = ParsedResponse(self._status, headers, body, self._keep_alive)
        self._state = _HEAD
        self._headers = None
        self._encoding = ""
        self._interim = 0
        self.started = False
        return response

    def _inflate(self, body: bytes) -> bytes:
        if self._encoding == "deflate":
            # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate
            wbits = 15 if body[:1] and (body[0] & 0x0F) == 8 else -15
        else:
            wbits = 16 + 15
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, self._max_body + 1)
        except zlib.error as exc:
            raise ProtocolError(f"body is not valid {self._encoding}: {exc}") from None
        if len(out) > self._max_body:
            raise ProtocolError(self._too_big())
        if body and not inflater.eof:
            raise ProtocolError(f"body is not valid {self._encoding}: truncated")
        return out

    def _too_big(self) -> str:
        return f"response body exceeds {self._max_body} bytes; not read further"
