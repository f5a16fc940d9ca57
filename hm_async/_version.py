import sys

import aiohttp

__version__ = "0.1.0"

#: Sent with every request, so HM (and proxies) can tell which client and version called.
USER_AGENT = (
    f"hm-async/{__version__} aiohttp/{aiohttp.__version__} "
    f"python/{sys.version_info.major}.{sys.version_info.minor}"
)
