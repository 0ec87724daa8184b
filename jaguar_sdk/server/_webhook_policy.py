"""Where webhooks may go: public addresses only, unless the operator allow-lists others.

A ``webhook_url`` is a request to make this server open a connection, so it is checked like
one (server-side request forgery): its form (:func:`jaguar_sdk.webhooks.split_webhook_url`:
printable ASCII, http(s), a host, no credentials), then every address its host resolves to.
Loopback, link-local (cloud metadata at 169.254.169.254), private, unique-local, multicast,
unspecified and other non-global addresses are refused, whatever the spelling: the host is
resolved with ``getaddrinfo`` exactly as the connection would be, so ``2130706433``,
``0x7f.1``, ``127.1`` and ``0177.0.0.1`` are all 127.0.0.1, and an IPv6 address that embeds an
IPv4 one (``::ffff:127.0.0.1``, 6to4, NAT64) is judged by the IPv4 address too.

The check runs twice: when the job is submitted (422 naming ``webhook_url``) and again when the
webhook connects (:class:`GuardedTransport`), on the address actually connected to, so a DNS
answer that changes in between (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from .._exceptions import InvalidRequestError
from ..webhooks import split_webhook_url

__all__ = ["GuardedTransport", "WebhookPolicy", "WebhookRefused"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or ``None`` when it is."""
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved, non-public address"
    return None


class WebhookRefused(httpcore.ConnectError):
    """The webhook's host resolved to an address this server may not connect to."""


class WebhookPolicy:
    """Which addresses webhooks may reach.

    Args:
        allow: Networks the operator allows besides public addresses, as CIDR strings
            (``"10.0.0.0/8"``, ``"127.0.0.1/32"``, ``"::1/128"``) or single addresses
            (``jaguar serve --webhook-allow``, ``create_app(webhook_allow=...)``).

    Raises:
        ValueError: An entry of ``allow`` is not an address or network.

    Example:
        >>> policy = WebhookPolicy(allow=["10.1.0.0/16"])
        >>> policy.refusal(ipaddress.ip_address("10.1.2.3")) is None
        True
        >>> policy.refusal(ipaddress.ip_address("127.0.0.1"))
        'a loopback address'
    """

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in allow
        )

    def __repr__(self) -> str:
        return f"WebhookPolicy(allow={[str(n) for n in self.allow]})"

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why a webhook may not connect to ``ip``, or ``None`` when it may."""
        if self._allowed(ip):
            return None
        inner = _embedded_ipv4(ip)
        if inner is not None:
            if self._allowed(inner):
                return None
            reason = _kind(inner)
            if reason is not None:
                return f"{reason} ({inner} inside {ip})"
        return _kind(ip)

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, as the connection would resolve it.

        Raises:
            OSError: The host does not resolve (``socket.gaierror``).
        """
        # socket.getaddrinfo is what socket.create_connection (and so httpcore's
        # SyncBackend.connect_tcp) uses; glibc's parser accepts the inet_aton spellings
        # (2130706433, 0x7f.1, 127.1, 0177.0.0.1), so they resolve to what they really are.
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]

    def check_form(self, value: Any) -> str:
        """Check a ``webhook_url``'s form only (no DNS).

        Raises:
            InvalidRequestError: 422 naming ``webhook_url``.
        """
        try:
            split_webhook_url(value)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), field="webhook_url") from None
        assert isinstance(value, str)
        return value

    def check_url(self, value: Any) -> str:
        """Check a ``webhook_url`` at submission: its form, then every address of its host.

        Blocks on DNS: call it from a worker thread.

        Returns:
            The URL.

        Raises:
            InvalidRequestError: 422 naming ``webhook_url``: malformed, credentials, a host
                that does not resolve, or one that resolves to a refused address.
        """
        url = self.check_form(value)
        parts = split_webhook_url(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError, ValueError):
            raise InvalidRequestError(
                f"webhook_url: the host {host[:80]!r} does not resolve", field="webhook_url"
            ) from None
        for ip in addresses:
            reason = self.refusal(ip)
            if reason is not None:
                raise InvalidRequestError(
                    f"webhook_url: {host[:80]!r} resolves to {ip}, {reason}; webhooks go to "
                    "public addresses only (the operator can allow networks with "
                    "--webhook-allow)",
                    field="webhook_url",
                )
        return url


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves, checks and connects to exactly the checked address."""

    def __init__(self, policy: WebhookPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._policy.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        refused: list[str] = []
        last: Exception | None = None
        for ip in addresses:
            reason = self._policy.refusal(ip)
            if reason is not None:
                refused.append(f"{ip} ({reason})")
                continue
            try:
                # An address literal: create_connection resolves nothing more, so the peer is
                # the address just checked (httpcore/_backends/sync.py SyncBackend.connect_tcp).
                stream = super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
                continue
            peer = ipaddress.ip_address(str(stream.get_extra_info("server_addr")[0]))
            if self._policy.refusal(peer) is not None:  # belt and braces
                stream.close()
                refused.append(str(peer))
                continue
            return stream
        if refused:
            raise WebhookRefused(f"refused: {host} resolves to {', '.join(refused)}")
        raise last or httpcore.ConnectError(f"{host} has no address")


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that connects only where a :class:`WebhookPolicy` allows.

    No proxies from the environment, no redirects (the sender does not follow them), and the
    address is checked when the connection is made, not only when the URL was accepted.

    Args:
        policy: The address policy.
        max_connections: Connections kept at once.
    """

    def __init__(self, policy: WebhookPolicy, *, max_connections: int = 16) -> None:
        super().__init__(trust_env=False)
        # httpx.HTTPTransport keeps its httpcore pool in `_pool` and sends every request
        # through it (httpx/_transports/default.py, HTTPTransport.__init__/handle_request);
        # httpcore.ConnectionPool takes the network backend that opens its sockets.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=_GuardedBackend(policy),
        )
