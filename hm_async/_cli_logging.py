"""What ``-v`` and ``-vv`` show on stderr.

The library logs to the ``hm_async`` logger tree (see the logging page of the docs): retries
(``retry ...``) and token events (``token issued ...``, ``token invalidated ...``,
``token request failed ...``) and one line per HTTP request (``request ...``) at DEBUG,
problems at WARNING. The CLI maps its verbosity onto that:

* no flag: nothing before the command's own outcome (the summary or one error line);
* ``-v``: warnings, retries and token refreshes, the events that explain a slow or failing
  run without one line per request;
* ``-vv``: everything, including a line per HTTP request.

No level shows a secret: the library never logs tokens, secrets or keys.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

#: DEBUG messages that ``-v`` shows: the library's retry and token events.
_EVENT_PREFIXES = ("retry", "token")


class _EventsOnly(logging.Filter):
    """Lets through warnings and the retry/token events, not the per-request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            return True
        return isinstance(record.msg, str) and record.msg.startswith(_EVENT_PREFIXES)


def configure_logging(verbosity: int) -> None:
    """Route the ``hm_async`` loggers to stderr for ``verbosity`` (the count of ``-v``)."""
    root = logging.getLogger("hm_async")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if verbosity <= 0:
        # The outcome is reported once, at the end; no stray lines before it.
        root.addHandler(logging.NullHandler())
        root.propagate = False
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           datefmt="%H:%M:%S"))
    if verbosity == 1:
        handler.addFilter(_EventsOnly())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    root.propagate = False
