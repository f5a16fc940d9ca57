"""``python -m hm_async``: the same as the ``hm-async`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
