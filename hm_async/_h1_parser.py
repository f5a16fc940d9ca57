"""Framing of the HTTP/1.1 answers to the GETs of :mod:`hm_async._h1_pool`, by llhttp.

The bytes are parsed by llhttp (the parser of Node.js, used by uvicorn) through
``httptools.HttpResponseParser``: a state machine in C that sees each byte once, so an
answer cut into any number of TCP segments costs linear CPU, and whose strict mode refuses
what request smuggling lives on -- ``Transfer-Encoding`` together with ``Content-Length``,
duplicate ``Content-Length`` fields, obsolete line folding, header names that are not
tokens, control characters in values, bare CR or LF line ends, malformed chunk sizes.
This module adds what llhttp leaves to its caller:

* HTTP/1.0 and HTTP/1.1 only (llhttp also takes 0.9 and 2.0), status codes 100-999;
* bounds: the status line and header fields at most :data:`MAX_HEAD_BYTES`; a chunk-size
  line (with its extensions) or a trailer line is refused once :data:`MAX_HEAD_BYTES` arrive
  without the parser getting past it; trailers at most :data:`MAX_TRAILER_FIELDS` fields
  and :data:`MAX_TRAILER_BYTES` bytes (and ignored); at most :data:`MAX_INTERIM_ANSWERS`
  interim answers; the body limit, checked on the wire and after inflating;
* interim ``1xx`` answers are skipped (a ``101`` switch is refused); ``204`` and ``304``
  have no body; only plain ``chunked`` is accepted as a transfer coding (hm_async sends no
  ``TE`` header); without ``Content-Length`` or chunked framing, the body runs until the
  server closes the connection (:meth:`ResponseParser.feed_eof`; httptools has no call for
  that, so this module ends such an answer itself);
* one ``Content-Encoding``, gzip, x-gzip or deflate, is inflated (stacked codings refused),
  with the body limit applied to the inflated size too, so a small compressed bomb cannot
  exhaust memory;
* keep-alive: HTTP/1.1 unless a ``Connection: close``, HTTP/1.0 only with
  ``Connection: keep-alive``; chunked framing in an HTTP/1.0 answer closes (RFC 9112 6.1).

Empty lines (CRLF) between answers are ignored, as RFC 9112 section 2.2 asks of a client;
any other byte after a complete answer is refused.
"""

from __future__ import annotations

import zlib

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from ._response import Response

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_INTERIM_ANSWERS",
    "MAX_TRAILER_BYTES",
    "MAX_TRAILER_FIELDS",
    "ParsedResponse",
    "ProtocolError",
    "Response",
    "ResponseParser",
]

#: Status line plus header fields. HM's answers carry a few hundred bytes of headers;
#: aiohttp's own limit is 8 KB per line.
MAX_HEAD_BYTES = 64 * 1024

#: Interim answers (100 Continue, 103 Early Hints) skipped before the real one; a server
#: sending more is broken or hostile.
MAX_INTERIM_ANSWERS = 10

#: Trailer fields after a chunked body (ignored, but parsed, so bounded). hm_async sends no
#: ``TE: trailers``, so a server has no reason to send any.
MAX_TRAILER_FIELDS = 32
MAX_TRAILER_BYTES = 8 * 1024

_NO_BODY_STATUSES = frozenset({204, 304})
_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})

# the header fields whose value decides the framing, the connection or the decoding
_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _CONTENT_ENCODING = range(4)
_FIELDS = {b"content-length": _CONTENT_LENGTH, b"transfer-encoding": _TRANSFER_ENCODING,
           b"connection": _CONNECTION, b"content-encoding": _CONTENT_ENCODING}
_FIELD_NAME_LENGTHS = frozenset(len(name) for name in _FIELDS)
#: The same fields as servers usually spell them (and in lower case, as HTTP/2 front ends
#: pass them on): one dict lookup per field, ``lower()`` only for other spellings.
_FIELDS_AS_SENT = {**_FIELDS, **{
    b"-".join(part.capitalize() for part in name.split(b"-")): kind
    for name, kind in _FIELDS.items()}}

_BOTH_FRAMINGS = "conflicting framing: Transfer-Encoding together with Content-Length"

# what llhttp's error reasons are about, in the words of this module's messages (the tests,
# and people reading logs, match these); the first fragment found in the reason wins
_LLHTTP_REASONS = (
    ("Duplicate Content-Length", "conflicting Content-Length values"),
    ("Content-Length can't be present", _BOTH_FRAMINGS),
    ("Transfer-Encoding can't be present", _BOTH_FRAMINGS),
    ("Content-Length overflow", "Content-Length too large"),
    ("Chunk size overflow", "chunk size too large"),
    ("Content-Length", "invalid Content-Length"),
    ("chunk size", "bad chunk size line"),
    ("chunk extension", "bad chunk size line"),
    ("after chunk data", "chunk not followed by CRLF"),
    ("Connection: close", "bytes after the end of the answer"),
    ("header", "malformed header field"),
    ("status", "bad status line"),
    ("version", "bad status line"),
    ("Expected HTTP/", "bad status line"),
    ("Expected dot", "bad status line"),
    ("response line", "bad status line"),
)


class ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.1 answer (the connection is unusable)."""


class ParsedResponse(Response):
    """One complete answer; ``keep_alive`` says whether its connection may be reused.

    A :class:`Response` itself, so the transport hands it on without copying. The header
    fields stay the raw bytes llhttp gave until someone reads ``headers``: a poll of
    thousands of VINs reads only status and body, and decoding a dozen fields into a
    multidict per answer was a tenth of the lane's CPU.
    """

    __slots__ = ("_fields", "keep_alive")

    def __init__(self, status: int, fields: list[tuple[bytes, bytes]], body: bytes,
                 keep_alive: bool) -> None:
        # Response.__init__ is not called: ``headers`` is filled in on first use
        self.status = status
        self.body = body
        self._fields = fields
        self.keep_alive = keep_alive

    @property
    def headers(self) -> CIMultiDictProxy[str]:  # type: ignore[override]
        try:
            return _HEADERS_SLOT.__get__(self, ParsedResponse)  # type: ignore[no-any-return]
        except AttributeError:
            headers = CIMultiDictProxy(CIMultiDict(
                [(name.decode("latin-1"), value.decode("latin-1"))
                 for name, value in self._fields]))
            _HEADERS_SLOT.__set__(self, headers)
            return headers


#: The slot ``Response.headers`` is stored in, under ParsedResponse's lazy property.
_HEADERS_SLOT = Response.__dict__["headers"]


class ResponseParser:
    """Feed it bytes with :meth:`feed`; it returns the answer once it is complete.

    One parser serves one connection for its whole life; after each complete answer it is
    ready for the next. ``started`` tells whether the current answer has begun (an empty
    line between answers does not begin one); a pooled connection closed before that never
    carried an answer to this request.

    The parser object is also llhttp's callback protocol: httptools calls the ``on_*``
    methods while :meth:`feed` runs. A callback that finds a fault raises
    :class:`ProtocolError`; httptools turns that into its own error, and :meth:`feed`
    raises the original.
    """

    __slots__ = ("_body", "_body_size", "_chunked", "_done", "_encoding", "_error", "_feeding",
                 "_fields", "_headers_done", "_interim", "_keep_alive", "_max_body", "_parser",
                 "_progress", "_silent", "_status", "_trailer_size", "_trailers", "_until_eof",
                 "started")

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._done: ParsedResponse | None = None
        self._error: ProtocolError | None = None
        self._interim = 0  # interim answers before the current one
        self._progress = False  # did the parser get past a line in this feed?
        self._silent = 0  # bytes fed since the parser last got past a line
        self._feeding = 0  # the length of the bytes being fed
        # the current answer, reset by on_message_begin
        self._fields: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers_done = False
        self._status = 0  # 0 until the head of a final (non-1xx) answer is complete
        self._chunked = False
        self._encoding = ""
        self._keep_alive = True
        self._until_eof = False
        self._trailers = 0
        self._trailer_size = 0
        self.started = False

    # -- the interface -----------------------------------------------------------------------

    def feed(self, data: bytes | memoryview) -> ParsedResponse | None:
        """Take the next bytes from the socket; the answer when it is complete, else None.

        Raises :class:`ProtocolError` for bytes that are not a valid answer, including
        bytes other than empty lines after a complete answer (a GET gets exactly one).
        """
        self._progress = False
        self._feeding = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise self._failure(exc) from None
        done = self._done
        if done is not None:
            self._done = None
            return done
        if self._progress:
            self._silent = 0
        elif self.started:
            # No line ended in these bytes: a head, a chunk-size line or a trailer is still
            # open. llhttp keeps no bound of its own, so one is kept here.
            self._silent += len(data)
            if self._silent > MAX_HEAD_BYTES:
                if not self._headers_done:
                    raise ProtocolError(f"answer head longer than {MAX_HEAD_BYTES} bytes")
                raise ProtocolError(
                    f"chunk size line or trailer too long (over {MAX_HEAD_BYTES} bytes)")
        return None

    def feed_eof(self) -> ParsedResponse | None:
        """The server closed the connection: the answer if that is how its body ends."""
        if self._until_eof:
            return self._finish()
        if self.started:
            raise ProtocolError("connection closed before the answer was complete")
        return None

    # -- llhttp's callbacks (the hot path: about a dozen calls per answer) ---------------------

    def on_message_begin(self) -> None:
        if self._done is not None:
            raise self._fail("bytes after the end of the answer")
        self._progress = True
        self.started = True
        self._fields = []
        self._headers_done = False
        self._silent = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # Only keep the field; the head is looked at once it is complete. No progress is
        # marked here, so the bytes of a head arriving in many segments add up to the head
        # limit in feed().
        if self._headers_done:
            self._trailer(name, value)
        else:
            self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        self._progress = True
        self._headers_done = True
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise self._fail(f"not an HTTP/1.x status line (HTTP/{version})")
        status = parser.get_status_code()
        if status < 100:
            raise self._fail(f"bad status code {status}")
        fields = self._fields
        if (self._silent + self._feeding > MAX_HEAD_BYTES  # else the head is shorter
                and sum(len(name) + len(value) + 4 for name, value in fields) > MAX_HEAD_BYTES):
            raise self._fail(f"answer head longer than {MAX_HEAD_BYTES} bytes")
        length = -1
        chunked = close = keep_alive_token = False
        encoding = ""
        for name, value in fields:
            kind = _FIELDS_AS_SENT.get(name)
            if kind is None:
                if len(name) not in _FIELD_NAME_LENGTHS:  # most fields end here
                    continue
                kind = _FIELDS.get(name.lower())
                if kind is None:
                    continue
            if kind == _CONTENT_LENGTH:
                # llhttp has checked the digits and refused a second field or overflow
                if len(value) > 18:  # int() refuses over 4300 digits with a ValueError
                    digits = value.lstrip(b"0")
                    if len(digits) > 18:
                        raise self._fail(self._too_big())
                    value = digits or b"0"
                length = int(value)
            elif kind == _TRANSFER_ENCODING:
                # hm_async sends no TE header, so only plain chunked is acceptable; any
                # other coding (or a list, or a second field) is refused, not guessed at
                # (llhttp would read such a body until the connection closes)
                if chunked or value.lower() != b"chunked":
                    raise self._fail(f"unsupported Transfer-Encoding {value[:40]!r}")
                chunked = True
            elif kind == _CONNECTION:
                token = value if value == b"keep-alive" else value.lower()
                if token == b"keep-alive":  # what nearly every server sends
                    keep_alive_token = True
                elif token == b"close":
                    close = True
                else:
                    tokens = {t.strip() for t in token.split(b",")}
                    if b"close" in tokens:
                        close = True
                    elif b"keep-alive" in tokens:
                        keep_alive_token = True
            elif kind == _CONTENT_ENCODING:
                coding = value.lower().decode("latin-1")
                if coding != "identity":
                    if encoding:  # one coding is all we advertise and all we undo
                        raise self._fail("more than one Content-Encoding")
                    encoding = coding
        if status < 200:
            self._interim_answer(status, chunked or length >= 0)
            return
        http10 = version == "1.0"
        keep_alive = (keep_alive_token or not http10) and not close
        if http10 and chunked:
            keep_alive = False  # RFC 9112 6.1: chunked framing in HTTP/1.0 is faulty
        if encoding and encoding not in _CODINGS:
            raise self._fail(f"unsupported Content-Encoding {encoding!r}")
        until_eof = False
        if status in _NO_BODY_STATUSES:
            pass
        elif length > self._max_body:
            raise self._fail(self._too_big())
        elif length < 0 and not chunked:
            until_eof = True
            keep_alive = False
        self._status = status
        self._chunked = chunked
        self._encoding = encoding
        self._keep_alive = keep_alive
        self._until_eof = until_eof
        self._body = []
        self._body_size = 0
        self._trailers = 0
        self._trailer_size = 0

    def on_body(self, body: bytes) -> None:
        self._progress = True
        self._body_size += len(body)
        if self._body_size > self._max_body:
            raise self._fail(self._too_big())
        self._body.append(body)

    def on_chunk_header(self) -> None:
        self._progress = True

    def on_chunk_complete(self) -> None:
        self._progress = True

    def on_message_complete(self) -> None:
        self._progress = True
        if self._status:
            self._done = self._finish()

    # -- internals ---------------------------------------------------------------------------

    def _interim_answer(self, status: int, framed: bool) -> None:
        if status == 101:
            raise self._fail("unexpected protocol switch (101)")
        if framed:
            # RFC 9110 15.2: a 1xx answer has no content (llhttp would read one for 1xx
            # codes other than 100, 102 and 103)
            raise self._fail(f"interim answer {status} with a body")
        self._interim += 1
        if self._interim > MAX_INTERIM_ANSWERS:
            raise self._fail(f"more than {MAX_INTERIM_ANSWERS} interim (1xx) answers")

    def _trailer(self, name: bytes, value: bytes) -> None:
        """A trailer field: counted, bounded and ignored."""
        self._progress = True
        self._trailers += 1
        self._trailer_size += len(name) + len(value) + 4
        if self._trailers > MAX_TRAILER_FIELDS:
            raise self._fail(f"more than {MAX_TRAILER_FIELDS} trailer fields")
        if self._trailer_size > MAX_TRAILER_BYTES:
            raise self._fail(f"trailer section longer than {MAX_TRAILER_BYTES} bytes")

    def _finish(self) -> ParsedResponse:
        chunks = self._body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._encoding:
            body = self._inflate(body)
        response = ParsedResponse(self._status, self._fields, body, self._keep_alive)
        self._body = []
        self._status = 0
        self._until_eof = False
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
            raise self._fail(f"body is not valid {self._encoding}: {exc}") from None
        if len(out) > self._max_body:
            raise self._fail(self._too_big())
        if body and not inflater.eof:
            raise self._fail(f"body is not valid {self._encoding}: truncated")
        return out

    def _fail(self, message: str) -> ProtocolError:
        """The error a callback raises; kept, since httptools reports its own in its place."""
        self._error = ProtocolError(message)
        return self._error

    def _failure(self, exc: httptools.HttpParserError) -> ProtocolError:
        """The :class:`ProtocolError` for an error of :meth:`feed`."""
        if self._error is not None:
            return self._error
        reason = str(exc)
        for fragment, meaning in _LLHTTP_REASONS:
            if fragment in reason:
                if fragment.endswith("overflow"):
                    meaning = self._too_big()
                self._error = ProtocolError(f"{meaning} ({reason})")
                return self._error
        self._error = ProtocolError(f"invalid answer ({reason})")
        return self._error

    def _too_big(self) -> str:
        return f"response body exceeds {self._max_body} bytes; not read further"
