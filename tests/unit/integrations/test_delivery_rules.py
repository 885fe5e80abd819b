"""Retry schedule, outcome classification, signatures and Discord URL rules."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest

from integrations import crypto
from integrations.delivery import send
from integrations.delivery.outcomes import backoff_seconds
from integrations.discord import urls
from integrations.settings import IntegrationsSettings


def settings(**over: object) -> IntegrationsSettings:
    return IntegrationsSettings(env="test", **over)  # type: ignore[arg-type]


def test_backoff_doubles_with_bounded_jitter_up_to_the_cap() -> None:
    s = settings(delivery_backoff_base_seconds=10, delivery_backoff_max_seconds=3600)
    for attempts, base in ((1, 10), (2, 20), (3, 40), (8, 1280), (20, 3600)):
        for _ in range(20):
            assert base <= backoff_seconds(attempts, s) <= base * 1.25


def test_default_schedule_keeps_retrying_for_more_than_a_day() -> None:
    s = settings()
    elapsed, attempts = 0.0, 0
    while elapsed <= s.delivery_retry_window_seconds:
        attempts += 1
        elapsed += backoff_seconds(attempts, s)
    assert s.delivery_retry_window_seconds >= 24 * 3600 and attempts >= 20


@pytest.mark.parametrize(("code", "delivered", "final"), [
    (200, True, True), (204, True, True), (301, False, True), (400, False, True),
    (404, False, True), (410, False, True), (408, False, False), (429, False, False),
    (500, False, False), (503, False, False)])
def test_outcome_rules(code: int, delivered: bool, final: bool) -> None:
    outcome = send.classify(httpx.Response(code), 5)
    assert (outcome.delivered, outcome.final, outcome.response_code) == (delivered, final, code)


def test_retry_after_from_header_or_discord_body() -> None:
    assert send.classify(httpx.Response(429, headers={"Retry-After": "7"}), 1).retry_after == 7
    assert send.classify(httpx.Response(429, json={"retry_after": 0.35}), 1).retry_after == 0.35
    assert send.classify(httpx.Response(429), 1).retry_after is None


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"event":"ping"}'
    expected = hmac.new(b"topsecret", body, hashlib.sha256).hexdigest()
    assert send.signature("topsecret", body) == f"sha256={expected}"
    headers = send.webhook_headers(delivery_id="d1", event="ping", secret="topsecret", body=body)
    assert headers["X-Bugnet-Signature"] == f"sha256={expected}"
    assert headers["X-Bugnet-Event"] == "ping" and headers["X-Bugnet-Delivery"] == "d1"


def test_credentials_round_trip_and_need_the_same_key() -> None:
    stored = crypto.encrypt("key-one", "ghp_secret")
    assert "ghp_secret" not in stored and crypto.decrypt("key-one", stored) == "ghp_secret"
    with pytest.raises(ValueError):
        crypto.decrypt("key-two", stored)


@pytest.mark.parametrize("url", [
    "https://discord.com/api/webhooks/1234/abc_DEF-1",
    "https://discordapp.com/api/webhooks/1234/abc",
    "https://canary.discord.com/api/v10/webhooks/1234/abc/",
])
def test_discord_urls_accepted(url: str) -> None:
    assert urls.validate(url, settings()).startswith("https://")


@pytest.mark.parametrize("url", [
    "https://discord.com/api/webhooks/abc/def", "https://discord.com:8443/api/webhooks/1/a",
    "https://discord.gg/api/webhooks/1/a", "https://x@discord.com/api/webhooks/1/a",
    "https://discord.com/api/webhooks/1", "http://127.0.0.1:1/api/webhooks/1/a"])
def test_discord_urls_refused(url: str) -> None:
    with pytest.raises(urls.NotDiscord):
        urls.validate(url, settings())


def test_configured_discord_base_is_accepted_and_trusted() -> None:
    s = settings(discord_base_url="http://127.0.0.1:9999/")
    url = urls.validate("http://127.0.0.1:9999/api/webhooks/1/tok", s)
    assert url == "http://127.0.0.1:9999/api/webhooks/1/tok" and urls.is_trusted(url, s)
    assert urls.hint(url) == "http://127.0.0.1:9999/api/webhooks/1/…"
    assert urls.hint("https://discord.com/api/webhooks/1/abcdefgh") == \
        "https://discord.com/api/webhooks/1/…efgh"
