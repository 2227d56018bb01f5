"""Which proxy a download goes through, chosen as pip and uv choose it.

``HTTP_PROXY`` / ``HTTPS_PROXY`` (the URL's scheme), else ``ALL_PROXY``, unless ``NO_PROXY`` names the host; each
variable in either case, the lowercase one winning (``urllib.request.getproxies``). ``NO_PROXY`` follows
``urllib.request.proxy_bypass``: ``*`` bypasses every host; an entry matches that host and its subdomains (a
leading dot changes nothing); an entry with a port matches only that port. As requests (pip) and uv also do, an
IP address matches an entry that is that address or a network holding it (``10.0.0.0/8``).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping

# urllib.request is imported on first use, as in lbuild.builders.wheels: `lbuild lock` starts uv before it needs it.


def proxy_for(url: str, proxies: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL for ``url`` (None: connect directly); ``proxies`` defaults to ``getproxies()``."""
    if proxies is None:
        from urllib.request import getproxies

        proxies = getproxies()
    parts = urllib.parse.urlsplit(url)
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not proxy or not parts.hostname:
        return None
    return None if bypassed(parts, proxies.get("no", "")) else proxy


def bypassed(parts: urllib.parse.SplitResult, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` = ``no_proxy`` sends the URL ``parts`` around the proxy."""
    if not no_proxy:
        return False
    from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed

    host = parts.netloc.rpartition("@")[2]  # host[:port], as urllib's ProxyHandler asks
    if proxy_bypass_environment(host, {"no": no_proxy}):
        return True
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return False
    for entry in no_proxy.split(","):
        try:
            if address in ipaddress.ip_network(entry.strip().strip("[]"), strict=False):
                return True
        except ValueError:
            continue
    return False
