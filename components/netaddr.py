"""Address parsing and overlap checks shared by the config validators (pure, no Pulumi)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 1123 host name: dot-separated DNS-1123 labels.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DNS_LABEL_RE = re.compile(_DNS_LABEL)
DNS_NAME_RE = re.compile(rf"(?=.{{1,253}}$){_DNS_LABEL}(\.{_DNS_LABEL})*")


def parse_ip(text: object) -> IPAddress | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_cidr(text: object) -> tuple[IPNetwork | None, str]:
    """The network, or None and why not (host bits set is an error, not silently masked)."""
    if not isinstance(text, str) or "/" not in text:
        return None, f"{text!r} is not a CIDR (expected e.g. 10.42.0.0/16)"
    try:
        return ipaddress.ip_network(text, strict=True), ""
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(text, strict=False)
            return None, f"{text!r} has host bits set (did you mean {fixed}?)"
        return None, f"{text!r} is not a CIDR (expected e.g. 10.42.0.0/16)"


@dataclass(frozen=True)
class AddressRange:
    """An inclusive range of addresses, from a CIDR or a MetalLB-style ``a-b`` range."""

    text: str
    first: IPAddress
    last: IPAddress

    def overlaps(self, other: AddressRange) -> bool:
        return (
            self.first.version == other.first.version
            and int(self.first) <= int(other.last)
            and int(other.first) <= int(self.last)
        )

    def contains(self, address: IPAddress) -> bool:
        return address.version == self.first.version and int(self.first) <= int(address) <= int(self.last)

    def within(self, network: IPNetwork) -> bool:
        return self.first in network and self.last in network


def parse_range(text: object) -> tuple[AddressRange | None, str]:
    if isinstance(text, str) and "-" in text and "/" not in text:
        left, _, right = text.partition("-")
        first, last = parse_ip(left.strip()), parse_ip(right.strip())
        if first is None or last is None or first.version != last.version:
            return None, f"{text!r} is not an address range (expected e.g. 192.0.2.10-192.0.2.20)"
        if int(first) > int(last):
            return None, f"{text!r} ends before it starts"
        return AddressRange(text, first, last), ""
    network, _ = parse_cidr(text)
    if network is None:
        return None, f"{text!r} is neither a CIDR nor an a-b address range"
    return AddressRange(str(text), network.network_address, network.broadcast_address), ""


def network_range(network: IPNetwork) -> AddressRange:
    return AddressRange(str(network), network.network_address, network.broadcast_address)
