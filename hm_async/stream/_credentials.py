"""The MQTT client certificate: the three PEM files HM's console hands out, checked up front.

HM's MQTT brokers authenticate a client by its TLS certificate (mutual TLS): the console lets
one download the CA certificate that signed the broker's certificate, a client certificate and
its private key. :class:`MQTTCredentials` reads the three files once, when constructed, and
builds the TLS context from them, so a missing, unreadable, malformed or mismatched file fails
at start-up with a message naming the file and the problem, never deep inside a reconnect.

The key never leaves the :class:`ssl.SSLContext`: the object keeps file paths, not key bytes,
and no repr, log line or error message quotes a file's content (the ``ssl`` module's own
errors are reduced to their reason code before they are shown). Verification of the broker's
certificate and host name is always on; there is no switch to turn it off.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from .._credentials import CredentialsError

__all__ = ["MQTTCredentials"]

#: PEM files of a CA bundle, a certificate or a key are a few kB; refuse to read anything absurd.
_MAX_PEM_BYTES = 1024 * 1024
_KEY_MARKERS = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----",
                b"-----BEGIN EC PRIVATE KEY-----", b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"


def _read_pem(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > _MAX_PEM_BYTES:
            raise CredentialsError(f"the {what} file {path} is too large to be a PEM file")
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"the {what} file {path} does not exist") from None
    except IsADirectoryError:
        raise CredentialsError(f"the {what} path {path} is a directory, not a file") from None
    except PermissionError:
        raise CredentialsError(f"the {what} file {path} is not readable (permission denied)"
                               ) from None
    except OSError as exc:
        raise CredentialsError(f"the {what} file {path} cannot be read: {exc.strerror}") from None


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails: paho-mqtt 2.2 drops such a socket without
    closing it (a file descriptor leak per refused connect, and a ResourceWarning)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _reason(exc: ssl.SSLError) -> str:
    """The ssl error's reason code only (e.g. ``KEY_VALUES_MISMATCH``): never file content."""
    return str(exc.reason or type(exc).__name__)


class MQTTCredentials:
    """The CA certificate, client certificate and client key for HM's MQTT brokers.

    ``MQTTCredentials.from_files(ca, certificate, private_key)`` reads and checks the three
    PEM files and raises :class:`hm_async.CredentialsError` naming the file that is missing,
    unreadable, not PEM, encrypted, or a key that does not belong to the certificate.
    """

    __slots__ = ("_ca", "_certificate", "_context", "_private_key")

    def __init__(self, ca: str | os.PathLike[str], certificate: str | os.PathLike[str],
                 private_key: str | os.PathLike[str]) -> None:
        self._ca = Path(ca)
        self._certificate = Path(certificate)
        self._private_key = Path(private_key)
        self._context = self._build_context()

    @classmethod
    def from_files(cls, ca: str | os.PathLike[str], certificate: str | os.PathLike[str],
                   private_key: str | os.PathLike[str]) -> MQTTCredentials:
        """Read the console's three PEM files: CA, client certificate, client private key."""
        return cls(ca, certificate, private_key)

    @property
    def certificate_file(self) -> Path:
        return self._certificate

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS client context: broker certificate and host name verified, our cert offered.

        Built once (reading the key from disk again on every reconnect would only add ways to
        fail); the same context serves every connection of every stream using these credentials.
        """
        return self._context

    def __repr__(self) -> str:
        return (f"MQTTCredentials(ca={str(self._ca)!r}, certificate={str(self._certificate)!r}, "
                f"private_key=<redacted>)")

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("MQTTCredentials cannot be pickled (it holds a private key)")

    def _build_context(self) -> ssl.SSLContext:
        ca = _read_pem(self._ca, "CA certificate")
        cert = _read_pem(self._certificate, "client certificate")
        key = _read_pem(self._private_key, "client private key")
        if _CERT_MARKER not in ca:
            raise CredentialsError(f"the CA certificate file {self._ca} holds no PEM certificate")
        if _CERT_MARKER not in cert:
            raise CredentialsError(
                f"the client certificate file {self._certificate} holds no PEM certificate")
        if not any(marker in key for marker in _KEY_MARKERS):
            raise CredentialsError(
                f"the client private key file {self._private_key} holds no PEM private key")
        if b"ENCRYPTED" in key:
            raise CredentialsError(
                f"the client private key file {self._private_key} is password-protected; "
                "HM's console key is not: use the downloaded file as is")
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # verify + check_hostname on
        ctx.sslsocket_class = _ClosingSSLSocket
        try:
            ctx.load_verify_locations(cadata=ca.decode("ascii", "replace"))
        except ssl.SSLError as exc:
            raise CredentialsError(f"the CA certificate file {self._ca} is not a valid "
                                   f"certificate ({_reason(exc)})") from None
        try:
            ctx.load_cert_chain(self._certificate, self._private_key)
        except ssl.SSLError as exc:
            reason = _reason(exc)
            if "MISMATCH" in reason:
                raise CredentialsError(
                    f"the client private key {self._private_key} does not belong to the client "
                    f"certificate {self._certificate}") from None
            raise CredentialsError(
                f"the client certificate {self._certificate} or key {self._private_key} cannot "
                f"be loaded ({reason})") from None
        except OSError as exc:  # the files changed between the check and the load
            raise CredentialsError(f"the client certificate or key cannot be read: "
                                   f"{exc.strerror}") from None
        return ctx
