"""Callbacks: the address check (SSRF guard), the signature, and one delivery attempt.

Signature: `X-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Timestamp>.<body>")>` over the exact
bytes sent, `X-Timestamp` in Unix seconds. `X-Delivery-Id` is the job id on every attempt, so a
receiver can drop a repeat (see flows.py for when one can happen).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

from fraudagent.core.errors import InvalidInput, Problem

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
DELIVERY_HEADER = "X-Delivery-Id"
ATTEMPT_HEADER = "X-Delivery-Attempt"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (also used by the tests): constant-time compare of the expected signature."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the operator picks the prefix length
# RFC 6052 section 2.2: where a /n NAT64 prefix puts the 32 IPv4 bits (bit 0 = the most significant of the
# 128), skipping bits 64-71 (the "u" octet); a local-use /48 may be extended to any of these lengths.
_NAT64_LAYOUTS = {48: ((48, 16), (72, 16)), 56: ((56, 8), (72, 24)), 64: ((72, 32),), 96: ((96, 32),)}


def _bits(value: int, start: int, length: int) -> int:
    return (value >> (128 - start - length)) & ((1 << length) - 1)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for, when it is one of the forms that embed one.

    IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, but not :: or ::1), 6to4 (2002::/16),
    Teredo (2001::/32: its server and its client address), NAT64 (64:ff9b::/96, and the local-use
    64:ff9b:1::/48 read under every layout RFC 6052 allows for it). Empty for any other address.
    """
    value = int(address)
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if value >> 32 == 0 and value > 1:
        found.append(ipaddress.IPv4Address(value))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in NAT64_LOCAL_USE:
        for layout in _NAT64_LAYOUTS.values():
            v4 = 0
            for start, length in layout:
                v4 = (v4 << length) | _bits(value, start, length)
            found.append(ipaddress.IPv4Address(v4))
    return found


def _refused_one(address: Address, production: bool) -> str | None:
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return "a link-local, multicast or unspecified address"  # cloud metadata lives on 169.254.169.254
    if production:
        if address.is_loopback:
            return "a loopback address"
        if address.is_private:
            return "a private address"
        if address.is_reserved or not address.is_global:
            return "a reserved address"
    return None


def _refused(address: Address, production: bool) -> str | None:
    """Why an address is refused, or None. An IPv6 address that embeds IPv4 addresses is judged as them
    (every one must pass): a 6to4 relay, a Teredo relay or a NAT64 gateway would carry the request there."""
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    if not embedded:
        return _refused_one(address, production)
    for v4 in embedded:
        why = _refused_one(v4, production)
        if why:
            return f"{why} (an IPv4 address embedded in an IPv6 one)"
    return None


def check_callback_url(url: str, *, production: bool) -> None:
    """http(s) with a host whose every resolved address is allowed; loopback and private ones only in dev mode.

    Raises InvalidInput (422), whatever the URL holds (a malformed one included). Checked when the job is
    created and again before every attempt (DNS may change).
    """

    def bad(message: str) -> InvalidInput:
        return InvalidInput(f"callback_url refused: {message}", [Problem("callback_url", message)])

    try:
        parts = urlsplit(url)
        scheme, hostname, username, password = parts.scheme, parts.hostname, parts.username, parts.password
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:  # an unclosed "[", a port out of range or not a number, …
        raise bad("the URL cannot be parsed") from None
    if scheme not in ("http", "https"):
        raise bad("only http and https URLs are accepted")
    if not hostname:
        raise bad("the URL has no host")
    if username or password:
        raise bad("credentials in the URL are not accepted")
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        raise bad("the host does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        why = _refused(address, production)
        if why:
            raise bad(f"the host resolves to {why}")


def post(
    client: httpx.Client, *, url: str, body: bytes, secret: str, delivery_id: str, attempt: int, timeout: float
) -> httpx.Response:
    """One signed POST (redirects are not followed)."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        TIMESTAMP_HEADER: timestamp,
        DELIVERY_HEADER: delivery_id,
        ATTEMPT_HEADER: str(attempt),
        "User-Agent": "fraudagent-callbacks/1",
    }
    return client.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
