"""Who is on the other end: the client's address, and a login name a trusted reverse proxy vouches for.

    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    proxies.trusts("10.1.2.3")                                       # True
    client_address("10.1.2.3", "198.51.100.7, 10.0.0.5", proxies)   # "198.51.100.7"

Only the direct peer (the TCP connection's address) is believed by default; behind trusted proxies
the client is the right-most `X-Forwarded-For` address that is not one of them (the left-most ones
are whatever the client claimed). A proxy-user header is believed only from a trusted peer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from llmtool.errors import InvalidRequestError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[Network] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise InvalidRequestError(
                    f"accounts.trusted_proxies: {entry!r} is not an IP address or network (CIDR, e.g. 10.0.0.0/8)"
                ) from None

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            parsed = ipaddress.ip_address(address.strip().removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        return any(parsed in network for network in self.networks)


def client_address(peer: str | None, forwarded_for: str | None, proxies: TrustedProxies) -> str | None:
    """The client's address: the peer, or behind trusted proxies the first untrusted hop from the right."""
    if not proxies.trusts(peer) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not proxies.trusts(hop):
            return hop[:100]
    return hops[0][:100] if hops else peer
