"""What the emulator pushes over MQTT, and the ``--mqtt*`` options of ``hm-async emulator``.

Free of aiomqtt on purpose: the emulator's command line must parse (and show ``--help``)
without the ``stream`` extra; the publisher itself (:mod:`._mqtt`) needs it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..stream._credentials import MQTTCredentials

__all__ = ["EMULATOR_APP_ID", "MQTTPush", "push_from_options"]

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


def push_from_options(*, broker: str | None, ca: str | None, cert: str | None,
                      key: str | None, app_id: str = EMULATOR_APP_ID,
                      environment: str = "production", version: int = 2, rate: float = 50.0,
                      duplicate_rate: float = 0.0, malformed_rate: float = 0.0,
                      seed: int | None = None) -> MQTTPush | None:
    """The :class:`MQTTPush` the ``--mqtt*`` options ask for (None without ``--mqtt``).

    Raises ValueError naming the option that is wrong, for the CLI to print as one line.
    """
    if not broker:
        return None
    host, sep, port = broker.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("--mqtt must be HOST:PORT")
    if not (ca and cert and key):
        raise ValueError("--mqtt needs --mqtt-ca, --mqtt-cert and --mqtt-key")
    return MQTTPush(host=host.strip("[]"), port=int(port),
                    credentials=MQTTCredentials.from_files(ca, cert, key), app_id=app_id,
                    environment=environment, version=version, rate=rate,
                    duplicate_rate=duplicate_rate, malformed_rate=malformed_rate, seed=seed)
