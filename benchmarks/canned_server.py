"""A deliberately cheap HTTP server for the wall-time row of ``fanout.py``.

Why not the emulator: with a fixed latency L every answer of a wave is due at the same
moment, so any server CPU per request queues up behind the others. The emulator (aiohttp.web,
token checks, fault and limit bookkeeping) spends enough per request to add 10-20% to the
wall time of *any* client -- a bare aiohttp loop included -- which measures the server, not the
client. This one answers from a raw asyncio protocol with payloads built once (by the
emulator's own generator, so the client decodes the same data) and a timer per request.

It serves ``POST /v1/access_tokens`` (any credentials; a canned token) and
``GET /v1/vehicle-data/autoapi-13/<vin>``; anything else is a 404. It keeps connections
alive and expects one request at a time per connection, as HTTP/1.1 clients send them.

Run: ``python benchmarks/canned_server.py --latency 0.05`` prints one JSON line (url,
credentials, vehicles) like ``python -m hm_async.emulator --json`` and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random

from hm_async.emulator._vehicle_data import VehicleDataSource

BRANDS = ("bmw", "mercedes-benz", "ford", "volkswagen", "renault", "toyota", "volvo-cars",
          "peugeot")
TOKEN = json.dumps({"access_token": "canned-" + "x" * 40, "token_type": "bearer",
                    "expires_in": 3600, "scope": "vehicle:all"}).encode()
VEHICLE_DATA = b"/v1/vehicle-data/autoapi-13/"


def canned_vehicles(n: int) -> list[tuple[str, str]]:
    """``n`` (VIN, brand) pairs, the brands taken in turn."""
    return [(f"CANNED{i:011d}", BRANDS[i % len(BRANDS)]) for i in range(n)]


def vehicle_json(source: VehicleDataSource, vin: str, brand: str, request_id: str) -> bytes:
    """A vehicle-data answer body as HM sends it, from the emulator's generator."""
    return json.dumps({"request_id": request_id, **source.payload(vin, brand)}).encode()


def _answer(status: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class _Server(asyncio.Protocol):
    def __init__(self, answers: dict[bytes, bytes], latency: tuple[float, float]) -> None:
        self.answers = answers
        self.latency = latency
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            method, target = head.split(b" ", 2)[:2]
            if method == b"POST" and target == b"/v1/access_tokens":
                self.send(_answer(b"200 OK", TOKEN))
                continue
            answer = self.answers.get(target[len(VEHICLE_DATA):]) \
                if target.startswith(VEHICLE_DATA) else None
            if answer is None:
                self.send(_answer(b"404 Not Found", b'{"errors":[{"title":"Not found"}]}'))
                continue
            lo, hi = self.latency
            self.loop.call_later(lo if lo == hi else random.uniform(lo, hi), self.send, answer)

    def send(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", default="0", help="SECONDS or MIN,MAX")
    parser.add_argument("--vehicles", type=int, default=1000)
    args = parser.parse_args()
    parts = [float(p) for p in args.latency.split(",")]
    latency = (parts[0], parts[-1])
    source = VehicleDataSource(failure_fraction=0.0, update_interval=3600.0)
    vehicles = canned_vehicles(args.vehicles)
    answers = {vin.encode(): _answer(b"200 OK", vehicle_json(source, vin, brand, f"canned-{vin}"))
               for vin, brand in vehicles}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Server(answers, latency), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "client_id": "canned",
                      "client_secret": "canned",
                      "vehicles": [{"vin": v, "brand": b} for v, b in vehicles]}), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
