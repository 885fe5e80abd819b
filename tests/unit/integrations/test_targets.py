"""SSRF rules for user-chosen targets (no servers; literal addresses need no DNS)."""

from __future__ import annotations

import ipaddress

import pytest

from integrations import targets
from integrations.settings import IntegrationsSettings


def settings(**over: object) -> IntegrationsSettings:
    return IntegrationsSettings(env="test", **over)  # type: ignore[arg-type]


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0",
    "224.0.0.251", "100.64.0.1", "::1", "fe80::1", "fd00:ec2::254", "fc00::1", "::",
    "ff02::1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "255.255.255.255",
    "198.18.0.1",
    # IPv4-compatible IPv6 (deprecated ::a.b.c.d) was taken for a global address
    "::127.0.0.1", "::10.0.0.1", "::169.254.169.254",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert targets.forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert targets.forbidden_reason(ipaddress.ip_address(address)) is None


def test_metadata_address_is_named() -> None:
    assert targets.forbidden_reason(ipaddress.ip_address("169.254.169.254")) == \
        "a cloud metadata address"


def test_check_refuses_literal_private_targets_unless_allowlisted() -> None:
    with pytest.raises(targets.TargetRefused, match="loopback"):
        targets.check_url("http://127.0.0.1:8080/x", settings())
    assert targets.check_url("http://127.0.0.1:8080/x",
                             settings(allowed_targets=["127.0.0.0/8"])).port == 8080
    assert targets.check_url("http://10.1.2.3/x", settings(allow_private_targets=True))
    with pytest.raises(targets.TargetRefused):
        targets.check_url("http://10.1.2.3/x", settings(allowed_targets=["127.0.0.0/8"]))


def test_allowlisted_host_names_and_wildcards() -> None:
    s = settings(allowed_targets=["hooks.internal", "*.corp.example"])
    target = targets.parse("http://a.corp.example/x", s)
    addr = [ipaddress.ip_address("10.0.0.5")]
    assert targets.check_addresses(target, addr, s) == addr
    assert targets.check_addresses(targets.parse("http://hooks.internal/", s), addr, s) == addr
    with pytest.raises(targets.TargetRefused):
        targets.check_addresses(targets.parse("http://corp.example.evil/", s), addr, s)


def test_https_required_in_production_and_when_http_is_off() -> None:
    prod = IntegrationsSettings(env="prod", secret_key="k" * 32)  # type: ignore[arg-type]
    with pytest.raises(targets.TargetRefused, match="https"):
        targets.parse("http://hooks.example.com/x", prod)
    assert targets.parse("https://hooks.example.com/x", prod).port == 443
    with pytest.raises(targets.TargetRefused, match="https"):
        targets.parse("http://hooks.example.com/x", settings(allow_http=False))
    assert targets.parse("http://hooks.example.com/x", settings()).port == 80


@pytest.mark.parametrize("url", ["", "hooks.example.com/x", "ftp://h/x", "https://",
                                 "https://u:p@h.example/x", "https://h.example:99999/",
                                 "https://h.example/a b", "https://" + "a" * 2100 + ".com/"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(targets.TargetRefused):
        targets.parse(url, settings())


def test_pinned_request_keeps_the_name_for_host_and_sni() -> None:
    target = targets.parse("https://Hooks.Example.com:8443/in?a=1", settings())
    assert target.host == "hooks.example.com" and target.path == "/in?a=1"
    assert target.host_header == "hooks.example.com:8443"
    assert target.url_for(ipaddress.ip_address("93.184.216.34")) == \
        "https://93.184.216.34:8443/in?a=1"
    assert target.url_for(ipaddress.ip_address("2606:4700::1")) == \
        "https://[2606:4700::1]:8443/in?a=1"
    assert targets.parse("https://h.example/", settings()).host_header == "h.example"


def test_unresolvable_hosts_are_accepted_at_creation_but_refused_at_delivery() -> None:
    s = settings()
    target = targets.check_url("https://no-such-host.invalid/x", s)
    with pytest.raises(targets.Unresolvable):
        targets.resolve(target, s)


def test_production_needs_a_secret_key() -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        IntegrationsSettings(env="prod")
