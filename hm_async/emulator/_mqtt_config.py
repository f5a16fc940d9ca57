"""What the emulator pushes over MQTT, and the ``--mqtt*`` options of ``hm-async emulator``.

Free of aiomqtt on purpose: the emulator's command line must parse (and show ``--help``)
without the ``stream`` extra; the publisher itself (:mod:`._mqtt`) needs it.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass

from ..stream._credentials import MQTTCredentials

__all__ = ["EMULATOR_APP_ID", "MQTTPush", "add_mqtt_arguments", "push_from_args"]

#: The application id the emulator publishes for unless told otherwise (stable across runs).
EMULATOR_APP_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://hm-async.invalid/emulator"))


@dataclass(frozen=True)
class MQTTPush:
    """Where and what the emulator publishes.

    ``rate`` is at most that many messages a second; ``version`` 2 publishes HM's V2 envelope
    on ``<live|sandbox>/level13/<app_id>``, 1 the per-property V1 messages on
    ``…/<app_id>/<vin>/<capability>/get/<property>``. ``duplicate_rate`` is the share of
    messages that are a redelivery of an earlier message (same ``message_id`` and body),
    ``malformed_rate`` the share that are broken (bad JSON, wrong types, unknown version).
    """

    host: str
    port: int
    credentials: MQTTCredentials
    app_id: str = EMULATOR_APP_ID
    environment: str = "production"
    version: int = 2
    rate: float = 50.0
    duplicate_rate: float = 0.0
    malformed_rate: float = 0.0
    seed: int | None = None
    client_id: str = "hm-emulator-publisher"

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be a positive number of messages per second")
        for name in ("duplicate_rate", "malformed_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.version not in (1, 2):
            raise ValueError("version must be 1 or 2")
        if self.environment not in ("production", "sandbox"):
            raise ValueError("environment must be 'production' or 'sandbox'")


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--mqtt*`` options (publishing needs ``pip install 'hm-async[stream]'``)."""
    g = parser.add_argument_group("MQTT push (needs the stream extra)")
    g.add_argument("--mqtt", metavar="HOST:PORT",
                   help="publish HM push messages to this MQTT broker (TLS, client certificate)")
    g.add_argument("--mqtt-ca", help="CA certificate (PEM) the broker's certificate chains to")
    g.add_argument("--mqtt-cert", help="client certificate (PEM) of the publisher")
    g.add_argument("--mqtt-key", help="client private key (PEM) of the publisher")
    g.add_argument("--mqtt-app-id", default=EMULATOR_APP_ID,
                   help=f"application id of the topic (default {EMULATOR_APP_ID})")
    g.add_argument("--mqtt-environment", choices=("production", "sandbox"), default="production")
    g.add_argument("--mqtt-version", type=int, choices=(1, 2), default=2)
    g.add_argument("--mqtt-rate", type=float, default=50.0, help="messages per second")
    g.add_argument("--mqtt-duplicate-rate", type=float, default=0.0)
    g.add_argument("--mqtt-malformed-rate", type=float, default=0.0)


def push_from_args(args: argparse.Namespace) -> MQTTPush | None:
    """The :class:`MQTTPush` the options ask for (None without ``--mqtt``); ValueError if bad."""
    if not args.mqtt:
        return None
    host, sep, port = args.mqtt.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("--mqtt must be HOST:PORT")
    if not (args.mqtt_ca and args.mqtt_cert and args.mqtt_key):
        raise ValueError("--mqtt needs --mqtt-ca, --mqtt-cert and --mqtt-key")
    return MQTTPush(host=host.strip("[]"), port=int(port),
                    credentials=MQTTCredentials.from_files(args.mqtt_ca, args.mqtt_cert,
                                                           args.mqtt_key),
                    app_id=args.mqtt_app_id, environment=args.mqtt_environment,
                    version=args.mqtt_version, rate=args.mqtt_rate,
                    duplicate_rate=args.mqtt_duplicate_rate,
                    malformed_rate=args.mqtt_malformed_rate, seed=args.seed)
