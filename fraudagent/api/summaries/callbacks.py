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


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address, production: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
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


def check_callback_url(url: str, *, production: bool) -> None:
    """http(s) with a host whose every resolved address is allowed; loopback and private ones only in dev mode.

    Raises InvalidInput (422). Checked when the job is created and again before every attempt (DNS may change).
    """
    def bad(message: str) -> InvalidInput:
        return InvalidInput(f"callback_url refused: {message}", [Problem("callback_url", message)])

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise bad("only http and https URLs are accepted")
    if not parts.hostname:
        raise bad("the URL has no host")
    if parts.username or parts.password:
        raise bad("credentials in the URL are not accepted")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        raise bad("the host does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
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
