"""What counts as personal data in a log, for the log scans of tests/integration/test_hostile.py (and the session-wide
watch in tests/conftest.py).

The logging module's patterns (fraudagent.core.logging.PII_PATTERNS) find card numbers, emails and IPs;
these are not personal data and are not counted:
- loopback and unspecified addresses: our own servers bind and log 127.0.0.1 / 0.0.0.0 / ::1;
- digit runs that fail the Luhn check (epoch-millisecond timestamps, sizes, counters);
- dotted quads that are not addresses (a version string such as 1.2.3.400).
Every other IPv4/IPv6 address counts, documentation ranges included: the tests' customer data uses them.
"""

from __future__ import annotations

import ipaddress
import re

from fraudagent.core.logging import PII_PATTERNS


def luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def pii_found(text: str) -> list[str]:
    """`kind: value` for each card number, email or IP in the text (see the module doc for what is not counted)."""
    found = []
    for kind, pattern in PII_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group(0).strip(" -")
            if kind == "ip":
                try:
                    address = ipaddress.ip_address(value)
                except ValueError:
                    continue  # a version string such as 1.2.3.400 or a time like 12:30:45:10 is not an address
                if address.is_loopback or address.is_unspecified:
                    continue
            if kind == "card" and not luhn(re.sub(r"\D", "", value)):
                continue
            found.append(f"{kind}: {value}")
    return found
