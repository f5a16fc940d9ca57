"""The private-key credential flow: the console's key file signs a fresh ES256 assertion.

    HM_CLIENT_ID=... python examples/private_key_auth.py private-key.json VIN

The HM console lets you download a private key as JSON (``private_key``, ``id``,
``inserted_at``); the client id is shown next to it. No client secret is involved: each
token request carries a short-lived JWT signed with the key, so the key itself never
leaves this machine. Set ``HM_BASE_URL`` to try it against the emulator
(``hm-async emulator --private-key-out private-key.json`` writes such a file).
"""

from __future__ import annotations

import asyncio
import os
import sys

from hm_async import HMClient, PrivateKeyCredentials


async def fetch_with_key(key_file: str, client_id: str, vin: str, *,
                         base_url: str | None = None) -> dict[str, object]:
    credentials = PrivateKeyCredentials.from_file(key_file, client_id=client_id)
    print(f"using {credentials!r}")  # the repr never shows the key
    async with HMClient(credentials, base_url=base_url) as hm:
        token = await hm.tokens.get()
        data = await hm.vehicle_data(vin)
        return {"scope": token.scope, "vin": data.vin, "brand": data.brand}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not os.environ.get("HM_CLIENT_ID"):
        print("usage: HM_CLIENT_ID=... private_key_auth.py KEY.json VIN", file=sys.stderr)
        return 2
    result = asyncio.run(fetch_with_key(argv[0], os.environ["HM_CLIENT_ID"], argv[1],
                                        base_url=os.environ.get("HM_BASE_URL") or None))
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
