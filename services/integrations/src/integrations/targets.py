"""Outgoing targets that users choose (webhook and Discord URLs), guarded against SSRF.

A target is checked when it is saved (400) and again at every delivery: the host name is
resolved, every address is checked, and the request then goes to one checked address with
the name as Host header and TLS SNI, so a DNS answer that changes between the check and the
connection (rebinding) cannot send it elsewhere.

Refused unless the settings permit them: non-https URLs (`allow_http`), and addresses that
are not global unicast — private, loopback, link-local (cloud metadata 169.254.169.254),
unspecified, multicast, reserved, shared (CGNAT), IPv4-mapped/compatible/translated forms of those and
the IPv6 metadata address fd00:ec2::254. `allow_private_targets` permits them all;
`allowed_targets` permits networks (CIDR) or host names ("hooks.internal", "*.corp.example").
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from .settings import IntegrationsSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"),
                                ipaddress.ip_address("fd00:ec2::254")})
MAX_URL_LENGTH = 2048


class TargetRefused(ValueError):
    """The URL may not be used as a target; the message says why (shown to the user)."""


class Unresolvable(TargetRefused):
    """The host name does not resolve (now)."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # lower-case; IPv6 without brackets
    port: int
    path: str  # path and query, never empty

    @property
    def key(self) -> str:
        """host:port, the unit of per-target concurrency."""
        return f"{self.host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """This URL with the host replaced by `address` (the one checked)."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse(url: str, settings: IntegrationsSettings, *, trusted: bool = False) -> Target:
    """The target of `url` after the checks that need no DNS (scheme, host, port); `trusted`
    (an operator-configured endpoint) may use http anywhere."""
    if not isinstance(url, str) or not url.strip():
        raise TargetRefused("must be a URL")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("must be a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("must be an http(s) URL with a host")
    if scheme == "http" and not (trusted or settings.http_allowed):
        raise TargetRefused("must use https")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not contain credentials")
    if any(c.isspace() for c in url):
        raise TargetRefused("must not contain spaces")
    host = parts.hostname.lower().rstrip(".")
    if not host:
        raise TargetRefused("must be an http(s) URL with a host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url=url, scheme=scheme, host=host,
                  port=port or (443 if scheme == "https" else 80), path=path)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _host_allowed(host: str, settings: IntegrationsSettings) -> bool:
    for entry in settings.allowed_targets:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if entry == host:
            return True
    return False


def _networks(settings: IntegrationsSettings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for entry in settings.allowed_targets:
        try:
            nets.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue  # a host name entry
    return nets


def _embedded_v4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        # IPv4-compatible (deprecated, ::a.b.c.d; RFC 4291 2.5.5.1), but not :: and ::1
        if int(address) >> 32 == 0 and int(address) > 1:
            return ipaddress.IPv4Address(int(address))
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why `address` may not be a target by default, or None when it is a public address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    embedded = _embedded_v4(address)
    if embedded is not None:
        return forbidden_reason(embedded)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def check_addresses(target: Target, addresses: list[IPAddress],
                    settings: IntegrationsSettings) -> list[IPAddress]:
    """`addresses` when every one may be used for `target`; else TargetRefused."""
    if not addresses:
        raise Unresolvable(f"host '{target.host}' does not resolve")
    if settings.allow_private_targets or _host_allowed(target.host, settings):
        return addresses
    nets = _networks(settings)
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None and not any(address in net for net in nets):
            raise TargetRefused(f"host '{target.host}' resolves to {reason} ({address}), "
                                "which is not allowed")
    return addresses


def _unique(infos: list[tuple[object, ...]]) -> list[IPAddress]:
    seen: list[IPAddress] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


def resolve(target: Target, settings: IntegrationsSettings) -> list[IPAddress]:
    """The checked addresses of `target` (blocking DNS); TargetRefused when one is refused."""
    literal = _literal(target.host)
    if literal is not None:
        return check_addresses(target, [literal], settings)
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Unresolvable(f"host '{target.host}' does not resolve") from None
    return check_addresses(target, _unique(list(infos)), settings)


async def resolve_async(target: Target, settings: IntegrationsSettings) -> list[IPAddress]:
    """`resolve` without blocking the event loop."""
    literal = _literal(target.host)
    if literal is not None:
        return check_addresses(target, [literal], settings)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Unresolvable(f"host '{target.host}' does not resolve") from None
    return check_addresses(target, _unique(list(infos)), settings)


def check_url(url: str, settings: IntegrationsSettings) -> Target:
    """The target of `url` when it may be used; else TargetRefused. A host that does not
    resolve now is accepted (DNS may be down, or the name not published yet): every delivery
    resolves and checks it again."""
    target = parse(url, settings)
    with contextlib.suppress(Unresolvable):
        resolve(target, settings)
    return target
