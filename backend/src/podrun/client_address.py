"""The client's address: the peer's own, or the one a trusted proxy in front of the API forwarded.

`X-Forwarded-For` (or `Forwarded`, whichever `proxies.header` names) is read only when the peer is one
of `proxies.trusted`, and then from the right: each proxy appends the address it received from, so
the rightmost hop that is not a trusted proxy is the client, and anything a client wrote further left
is ignored. A hop that is not an address (`unknown`, an obfuscated name, garbage) ends the walk at the
last trusted address: a forged or broken header is never an error, it just is not believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from podrun.settings import ProxySettings

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(peer: str | None, header_values: Sequence[str], proxies: ProxySettings) -> str | None:
    """The client's address, given the TCP peer's and the values of the forwarding header `proxies` names."""
    if not _trusted(_ip(peer), proxies):
        return peer
    address = peer
    for hop in reversed(_hops(header_values, proxies.header)):
        ip = _ip(hop)
        if ip is None:
            break
        address = str(ip)
        if not _trusted(ip, proxies):
            break
    return address


def _trusted(ip: _IP | None, proxies: ProxySettings) -> bool:
    return ip is not None and any(ip in network for network in proxies.trusted)


def _hops(values: Sequence[str], header: str) -> list[str]:
    hops = [item.strip() for value in values for item in value.split(",")]
    if header == "x-forwarded-for":
        return hops
    # RFC 7239: `for=` among `;`-separated pairs, possibly quoted, IPv6 in brackets, with a port.
    found: list[str] = []
    for element in hops:
        pairs = (pair.split("=", 1) for pair in element.split(";") if "=" in pair)
        found.extend(value.strip().strip('"') for name, value in pairs if name.strip().lower() == "for")
    return found


def _ip(value: str | None) -> _IP | None:
    if not value:
        return None
    if value.startswith("["):  # [IPv6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # IPv4:port
        value = value.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
