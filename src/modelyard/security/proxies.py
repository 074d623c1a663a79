"""The client's address, taking ``X-Forwarded-For`` only from trusted proxies.

``MODELYARD_TRUSTED_PROXIES`` lists the proxies (addresses or CIDR networks) in front of
the service; by default there are none and the address is the TCP peer's, whatever the
headers say. When the peer is a trusted proxy, the forwarded addresses are read from the
right (the hop nearest this service) and the first one that is not itself a trusted proxy
is the client: anything further left was written by the client and may be forged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from modelyard.config import Network, parse_networks

__all__ = ["Network", "client_address", "parse_networks"]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _forwarded(values: Iterable[str]) -> list[str]:
    hops = []
    for value in values:
        for hop in value.split(","):
            hop = hop.strip()
            if hop.startswith("[") and "]" in hop:  # [v6]:port
                hop = hop[1 : hop.index("]")]
            elif hop.count(":") == 1:  # v4:port
                hop = hop.split(":", 1)[0]
            hops.append(hop)
    return hops


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str | None:
    """The client of a request from ``peer`` carrying these ``X-Forwarded-For`` values."""
    if peer is None or not trusted or not _trusted(peer, trusted):
        return peer
    hops = _forwarded(forwarded_for)
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where an address should be: the proxy is the client
    return hops[0] if hops and hops[0] else peer
