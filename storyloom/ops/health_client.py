"""`storyloom health`: ask the local operations server whether this process is healthy.

For container health checks: the slim bot image has no curl, and a command of our own
reads the port from the same settings the process was started with.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from storyloom.config import Settings

WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def health_url(settings: Settings) -> str:
    """Where this machine reaches the operations server of a process run with `settings`."""
    host = "127.0.0.1" if settings.ops_host in WILDCARD_HOSTS else settings.ops_host
    if ":" in host:  # an IPv6 address needs brackets in a URL
        host = f"[{host}]"
    return f"http://{host}:{settings.ops_port}/healthz"


def probe(url: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """(healthy, what it answered): healthy only on HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return False, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return False, f"no answer from {url}: {reason}"
