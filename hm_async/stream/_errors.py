"""The streaming failures, as :class:`hm_async.HMError` subclasses.

Transient trouble (broker restarting, connection dropped, keep-alive expired) is never raised:
the stream reconnects. What ends a stream is a *permanent refusal*, where trying again would
only repeat it: the broker or we rejected a certificate, the client is not authorised to
connect or to subscribe, the client id or protocol is refused. Those raise
:class:`StreamRefusedError`. A caller who sets ``give_up_after`` also gets
:class:`StreamUnavailableError` when no connection succeeded for that long.

(These live here while the streaming package is new; they belong in ``hm_async._errors``.)
"""

from __future__ import annotations

from .._errors import HMError

__all__ = ["StreamError", "StreamRefusedError", "StreamUnavailableError"]


class StreamError(HMError):
    """Root of the failures that end a stream."""


class StreamRefusedError(StreamError):
    """The broker refused us for good (certificate, authorisation, client id, protocol).

    ``reason`` is a short machine-readable cause: ``"certificate"``, ``"not_authorized"``,
    ``"subscribe_refused"``, ``"qos"`` (only QoS 0 granted: at least once impossible),
    ``"client_id"`` or ``"protocol"``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class StreamUnavailableError(StreamError):
    """No connection to the broker succeeded within ``give_up_after`` seconds."""
