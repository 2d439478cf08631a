"""Which addresses a webhook may reach: public ones only (no SSRF), unless allowlisted.

The same rule is applied when a webhook is created (an IP literal in a refused range is a 422)
and again where the connection is made (app.notifications.delivery resolves the name once,
checks every address, and connects to a checked one — a name that resolved to a public address
yesterday and to 10.0.0.1 today, DNS rebinding, is refused then).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

# Refused unless allowlisted. `is_global` already excludes most of these; they are named so
# that the rule reads as what it is, and so that a Python whose tables differ still refuses them.
REFUSED_NETWORKS = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "64:ff9b::/96", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10",
    "fec0::/10", "ff00::/8",
)]


class RefusedAddress(ValueError):
    """The URL or an address it resolves to may not be connected to."""


def networks(allowlist: Iterable[str]) -> list:
    return [ipaddress.ip_network(n, strict=False) for n in allowlist]


def address_allowed(address: str, allowlist: Iterable = ()) -> bool:
    """A public unicast address, or one inside an allowlisted network."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    allowed = [n if not isinstance(n, str) else ipaddress.ip_network(n, strict=False)
               for n in allowlist]
    if any(ip.version == n.version and ip in n for n in allowed):
        return True
    if any(ip.version == n.version and ip in n for n in REFUSED_NETWORKS):
        return False
    return ip.is_global and not ip.is_multicast


def split(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or RefusedAddress saying what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedAddress(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedAddress("only http:// and https:// URLs are accepted")
    if not parts.hostname:
        raise RefusedAddress("the URL has no host")
    if parts.username or parts.password:
        raise RefusedAddress("the URL may not carry a user name or password")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def literal(host: str):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_at_creation(url: str, allowlist: Iterable[str], resolve=None) -> None:
    """Refuse a URL that is not http(s), or whose IP literal or resolved address is refused.

    A name that does not resolve (no DNS here, or not yet) is accepted: it is checked again at
    every delivery. `resolve(host, port)` returns addresses (tests inject one).
    """
    _scheme, host, port = split(url)
    allowed = networks(allowlist)
    ip = literal(host)
    if ip is not None:
        if not address_allowed(str(ip), allowed):
            raise RefusedAddress(f"{ip} is not a public address")
        return
    if resolve is None:
        return
    try:
        found = resolve(host, port)
    except OSError:
        return
    for address in found:
        if not address_allowed(address, allowed):
            raise RefusedAddress(f"{host} resolves to {address}, which is not a public address")
