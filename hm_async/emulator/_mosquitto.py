"""A throwaway local mosquitto with mTLS, for ``hm-async demo --stream``.

HM's MQTT brokers authenticate clients by certificate; so does this one: a CA, a server
certificate for 127.0.0.1 and one client certificate per user are generated (``cryptography``,
already needed for ES256 tokens) into a private temporary directory, and mosquitto 2.x runs
with ``require_certificate true`` on a free port of 127.0.0.1 until :meth:`LocalBroker.stop`.
Needs the ``mosquitto`` binary (Debian: ``apt-get install mosquitto``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..stream._credentials import MQTTCredentials

__all__ = ["LocalBroker", "find_mosquitto"]


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


class LocalBroker:
    """mosquitto on 127.0.0.1 with generated certificates; ``credentials(user)`` for clients."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self._tmp = tempfile.TemporaryDirectory(prefix="hm-async-mqtt-")
        self.dir = Path(self._tmp.name)
        self.host = "127.0.0.1"
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = int(s.getsockname()[1])
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_cert = self._issue(_name("hm-async demo CA"), self._ca_key.public_key(),
                                    ca=True)
        (self.dir / "ca.pem").write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
        self._leaf("server", server=True)
        self._proc: subprocess.Popen[bytes] | None = None

    def _issue(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, *, ca: bool,
               san: x509.SubjectAlternativeName | None = None,
               usage: x509.ObjectIdentifier | None = None) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        issuer = subject if ca else self._ca_cert.subject
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return builder.sign(self._ca_key, hashes.SHA256())

    def _leaf(self, name: str, *, server: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(self.host)),
                                           x509.DNSName("localhost")]) if server else None
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        cert = self._issue(_name(name), key.public_key(), ca=False, san=san, usage=usage)
        cert_path, key_path = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        return cert_path, key_path

    def credentials(self, user: str) -> MQTTCredentials:
        cert, key = self._leaf(user)
        return MQTTCredentials.from_files(self.dir / "ca.pem", cert, key)

    def start(self) -> None:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\n"
            f"cafile {self.dir / 'ca.pem'}\ncertfile {self.dir / 'server.pem'}\n"
            f"keyfile {self.dir / 'server.key'}\n"
            "require_certificate true\nuse_identity_as_username true\n"
            "allow_anonymous false\nmax_queued_messages 0\n"
            "log_dest none\n" + ("user root\n" if os.geteuid() == 0 else ""))
        self._proc = subprocess.Popen([self._binary, "-c", str(conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise OSError(f"mosquitto exited with code {self._proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port),
                                                                        timeout=0.2):
                return
            time.sleep(0.05)
        raise OSError("mosquitto did not start listening")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._tmp.cleanup()
