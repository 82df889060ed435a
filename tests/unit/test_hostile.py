"""Hostile input, without servers: arbitrary JSON, bytes and model output never crash the bundle loader or the
draft parser; the callback guard admits only public addresses in production, for any IPv4 or IPv6 form; the PII
pattern check finds what is planted. Through the API and the stores: tests/integration/test_hostile.py.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from fraudagent.agent.drafting import ModelDraft, parse_draft
from fraudagent.core.bundle import parse_bundle, read_bundles
from fraudagent.core.errors import InvalidInput
from fraudagent.core.models import CaseBundle
from fraudagent.summaries.callbacks import check_callback_url
from tests.bundles import example
from tests.pii import pii_found

FEW = hsettings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def _outcome_is_clean(doc: Any) -> None:
    bundle, problems = parse_bundle(doc)
    assert (bundle is None) == bool(problems)
    assert all(p.path.startswith("$") and p.message for p in problems)


@FEW
@given(json_values)
def test_any_json_document_is_refused_with_located_problems_or_accepted(doc: Any) -> None:
    _outcome_is_clean(doc)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


EXAMPLE = example()


EXAMPLE_PATHS = [p for p in _paths(EXAMPLE) if p]


@FEW
@given(st.sampled_from(EXAMPLE_PATHS), json_values | st.just(None), st.booleans())
def test_a_valid_bundle_with_one_field_replaced_or_removed_never_crashes(
    path: tuple[Any, ...], value: Any, remove: bool
) -> None:
    doc = copy.deepcopy(EXAMPLE)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    _outcome_is_clean(doc)


@FEW
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_in_a_bundle_file_are_refused_cleanly(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("junk") / "bundle.json"
    path.write_bytes(data)
    try:
        bundles = read_bundles(path)
    except InvalidInput as error:
        assert error.problems
    else:
        assert all(isinstance(b, CaseBundle) for b in bundles)


def test_deeply_nested_and_invalid_utf8_bundle_files_are_located_problems(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "latin1.json").write_bytes(json.dumps(EXAMPLE).encode().replace(b"xX_sniper_Xx", b"caf\xe9"))
    (tmp_path / "lines.jsonl").write_text(json.dumps(EXAMPLE) + "\n" + "{" * 100_000 + "\n")
    with pytest.raises(InvalidInput) as refused:
        read_bundles(tmp_path)
    messages = {Path(p.path.split(":")[0]).name: p.message for p in refused.value.problems}
    assert messages["deep.json"] in ("JSON nested too deeply",) or messages["deep.json"].startswith("not valid JSON")
    assert messages["latin1.json"] == "not UTF-8 text"
    assert "lines.jsonl" in messages


@FEW
@given(st.text(max_size=400) | json_values.map(json.dumps))
def test_any_model_output_is_a_draft_or_a_reason_why_not(raw: str) -> None:
    draft, why = parse_draft(raw)
    assert (draft is None) != (why is None)
    with contextlib.suppress(ValidationError):
        ModelDraft.model_validate_json(raw)


def _verdict(url: str, *, production: bool) -> bool:
    try:
        check_callback_url(url, production=production)
    except InvalidInput:
        return False
    return True


def _literal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"http://[{address}]:8443/hook" if address.version == 6 else f"http://{address}:8443/hook"


V4 = ipaddress.IPv4Address


V6 = ipaddress.IPv6Address


def _oracle_embedded(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The test's own reading (plain bit arithmetic, not the guard's code) of the IPv6 forms that embed IPv4."""
    if address.version == 4:
        return []
    n, low32 = int(address), int(address) & 0xFFFFFFFF
    found = []
    if n >> 32 == 0xFFFF:  # ::ffff:a.b.c.d
        found.append(V4(low32))
    if n >> 32 == 0 and n > 1:  # ::a.b.c.d (:: and ::1 are themselves)
        found.append(V4(low32))
    if n >> 112 == 0x2002:  # 6to4: 2002:AABB:CCDD::/48
        found.append(V4((n >> 80) & 0xFFFFFFFF))
    if n >> 96 == 0x20010000:  # Teredo: server in bits 32-63, client (inverted) in the last 32
        found += [V4((n >> 64) & 0xFFFFFFFF), V4(~n & 0xFFFFFFFF)]
    if n >> 32 == 0x64FF9B << 64:  # NAT64 well-known prefix /96
        found.append(V4(low32))
    if n >> 80 == 0x64FF9B0001:  # NAT64 local-use /48, under the /48, /56, /64 and /96 layouts
        found += [
            V4((((n >> 64) & 0xFFFF) << 16) | ((n >> 40) & 0xFFFF)),
            V4((((n >> 64) & 0xFF) << 24) | ((n >> 32) & 0xFFFFFF)),
            V4((n >> 24) & 0xFFFFFFFF),
            V4(low32),
        ]
    return found


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_reserved and not address.is_multicast


def _dev_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_link_local or address.is_multicast or address.is_unspecified


def _embedding_forms(v4: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    """The IPv6 spellings of one IPv4 address (Teredo with a public peer on the other side)."""
    a, public = int(v4), int(V4("93.184.215.14"))
    return {
        "mapped": V6((0xFFFF << 32) | a),
        "compatible": V6(a),
        "6to4": V6((0x2002 << 112) | (a << 80) | 1),
        "teredo client": V6((0x20010000 << 96) | (public << 64) | (~a & 0xFFFFFFFF)),
        "teredo server": V6((0x20010000 << 96) | (a << 64) | (~public & 0xFFFFFFFF)),
        "nat64": V6((0x64FF9B << 96) | a),
        "nat64 local /96": V6((0x64FF9B0001 << 80) | a),
        "nat64 local /48": V6((0x64FF9B0001 << 80) | ((a >> 16) << 64) | ((a & 0xFFFF) << 40)),
    }


@FEW
@given(
    st.ip_addresses() | st.ip_addresses(v=4).flatmap(lambda v4: st.sampled_from(list(_embedding_forms(v4).values())))
)
def test_the_callback_guard_admits_only_public_addresses_in_production(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Any IPv4/IPv6 literal (half of them IPv6 forms that embed an IPv4 address): production admits it iff
    it is globally routable unicast outside the reserved ranges, where an IPv6 address that embeds IPv4
    addresses (mapped, compatible, 6to4, Teredo, NAT64) is judged as those (every one must pass); dev mode
    refuses link-local, multicast and unspecified addresses, judged the same way, and admits the rest
    (loopback receivers while developing). No request is made."""
    judged = _oracle_embedded(address) or [address]
    assert _verdict(_literal(address), production=True) == all(_public(a) for a in judged), judged
    assert _verdict(_literal(address), production=False) == (not any(_dev_refused(a) for a in judged)), judged


INTERNAL_V4 = ["127.0.0.1", "10.1.2.3", "169.254.169.254"]


@pytest.mark.parametrize("v4", INTERNAL_V4)
def test_every_ipv6_form_of_an_internal_ipv4_address_is_refused_in_production(v4: str) -> None:
    """Loopback, private and the cloud metadata address, in every IPv6 form that embeds IPv4: each is
    refused in production (the metadata address in dev mode too: link-local), e.g. 6to4 `2002:7f00:1::`."""
    forms = _embedding_forms(V4(v4))
    assert (
        str(forms["6to4"])
        == {"127.0.0.1": "2002:7f00:1::1", "10.1.2.3": "2002:a01:203::1", "169.254.169.254": "2002:a9fe:a9fe::1"}[v4]
    )
    admitted = {name: str(a) for name, a in forms.items() if _verdict(_literal(a), production=True)}
    assert admitted == {}
    assert not _verdict("http://[2002:7f00:1::]/", production=True)  # the form the hostile pass found
    if v4 == "169.254.169.254":
        assert {name for name, a in forms.items() if _verdict(_literal(a), production=False)} == set()


def test_ipv6_forms_of_a_public_ipv4_address_pass_only_when_every_embedded_address_is_public() -> None:
    public = _embedding_forms(V4("93.184.215.14"))
    verdicts = {name: _verdict(_literal(a), production=True) for name, a in public.items()}
    # the local-use NAT64 prefix is read under every layout RFC 6052 allows: some reading is internal
    assert verdicts == {
        "mapped": True,
        "compatible": True,
        "6to4": True,
        "teredo client": True,
        "teredo server": True,
        "nat64": True,
        "nat64 local /96": False,
        "nat64 local /48": False,
    }
    # Teredo judges both ends: a public server with a private client is refused
    assert not _verdict(
        "http://[2001:0:5db8:d70e:0:f5fe:f5fe:fffe]/", production=True
    )  # server 93.184.215.14, client 10.1.0.1


@FEW
@given(
    st.ip_addresses(network="10.0.0.0/8")
    | st.ip_addresses(network="172.16.0.0/12")
    | st.ip_addresses(network="192.168.0.0/16")
    | st.ip_addresses(network="127.0.0.0/8")
    | st.ip_addresses(network="169.254.0.0/16")
    | st.ip_addresses(network="fc00::/7")
    | st.ip_addresses(network="fe80::/10")
)
def test_no_private_loopback_or_link_local_address_passes_in_production(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert not _verdict(_literal(address), production=True)


CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.org"


def test_the_pattern_check_itself_finds_planted_pii() -> None:
    assert pii_found(f"x {CARD} y {EMAIL} z 203.0.113.9 w 2001:db8:0:0:0:0:0:1") == [
        f"card: {CARD}",
        f"email: {EMAIL}",
        "ip: 203.0.113.9",
        "ip: 2001:db8:0:0:0:0:0:1",
    ]
    assert pii_found("listening on 127.0.0.1:8000 and 0.0.0.0, ts 1764249394000") == []
