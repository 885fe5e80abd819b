"""SSRF and secrets (issue 7): every URL a user gives that the server will call is refused on
private, loopback, link-local and metadata addresses — at configuration (400 naming the field)
and again at every call, with the connection pinned to the checked address — and secrets
(password, API key, webhook secrets, Discord/git tokens, the Steam key, bearer tokens, the
password hash) never appear in a response, a log line or an event, and are hashed or
encrypted at rest.

Where users give URLs the server calls (integrations, §7): webhook `url` (POST, PATCH), the
Discord `webhook_url` (POST/PUT, PATCH), the git integration's `base_url` (self-hosted GitLab,
GitHub Enterprise). The Steam store/API and default GitHub/GitLab URLs are operator settings.

Two halves:
- In-process, product defaults (`IntegrationsSettings(env="test")`: no allowlist) and DNS: the
  guard of every entry point against every address form; names that resolve to private
  addresses (a real /etc/hosts name, `localhost`, and scripted DNS answers); DNS rebinding at
  delivery and at the git call. The shared e2e stack allowlists 127.0.0.0/8 for its local
  receivers, so loopback defaults are proven here.
- Through Envoy on the shared stack: 400s naming the field for every other form, redirects
  never followed, and the secrets scan of responses, every log file, every JetStream message
  and every row of every database.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import secrets
import socket
import string
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher
from e2e.support import auth
from e2e.support import wait_for as support_wait_for
from fakes.gitlab import FakeGitLab
from integration.integrations.receivers import Receiver
from security.ssrf_support import ScriptedDns

from bugnet_common import errors
from bugnet_common.apikeys import hash_api_key
from bugnet_stack import Stack
from integrations import crypto, targets
from integrations.delivery import send
from integrations.discord import service as discord_service
from integrations.git import providers
from integrations.git import service as git_service
from integrations.git.providers import IssueDraft
from integrations.settings import DEV_SECRET_KEY, IntegrationsSettings
from integrations.webhooks import service as webhook_service

# ---- the address forms -------------------------------------------------------------------

# Refused by the product default AND by the e2e stack (whose allowlist is 127.0.0.0/8 only).
REFUSED_EVERYWHERE = [
    "http://10.0.0.1/hook", "http://10.255.255.254:8080/hook", "http://172.16.0.1/hook",
    "http://172.31.255.255/hook", "http://192.168.0.1/hook", "http://192.168.255.1:443/hook",
    "http://[::1]/hook", "http://[::1]:8080/hook", "http://[fc00::1]/hook",
    "http://[fd12:3456:789a::1]/hook", "http://[fe80::1]/hook", "http://[fe80::1%25eth0]/hook",
    "http://169.254.169.254/latest/meta-data/", "http://169.254.0.1/hook",
    "http://[fd00:ec2::254]/latest/meta-data/", "http://0.0.0.0/hook", "http://0/hook",
    "http://[::]/hook", "http://100.64.0.1/hook",
    # decimal / hex / octal / short forms of 10.0.0.1 and 169.254.169.254 (inet_aton accepts them)
    "http://167772161/hook", "http://0xa000001/hook", "http://0xa.0.0.1/hook",
    "http://012.0.0.1/hook", "http://10.1/hook", "http://2852039166/latest/meta-data/",
    # IPv4 inside IPv6: mapped, compatible, 6to4, NAT64 (loopback here is not allowlisted:
    # the allowlist is an IPv4 network)
    "http://[::ffff:127.0.0.1]/hook", "http://[::ffff:7f00:1]/hook",
    "http://[0:0:0:0:0:ffff:10.0.0.1]/hook", "http://[::127.0.0.1]/hook",
    "http://[::10.0.0.1]/hook", "http://[2002:a00:1::]/hook", "http://[64:ff9b::a9fe:a9fe]/hook",
    # credentials in the URL, and other schemes
    "http://evil@127.0.0.1/hook", "http://evil.com:x@127.0.0.1/hook",
    "http://user:pass@10.0.0.1/hook", "http://127.0.0.1:80\\@evil.com/hook",
    "ftp://10.0.0.1/hook", "gopher://127.0.0.1:6379/_INFO", "file:///etc/passwd",
    "dict://127.0.0.1:11211/stats", "javascript:alert(1)", "//10.0.0.1/hook", "10.0.0.1/hook",
]

# Loopback forms: refused by the product default (the e2e stack allowlists them).
LOOPBACK = [
    "http://127.0.0.1/hook", "http://127.0.0.1:8080/hook", "http://127.255.255.254/hook",
    "http://2130706433/hook", "http://0x7f.1/hook", "http://0x7f000001/hook",
    "http://0177.0.0.1/hook", "http://017700000001/hook", "http://127.1/hook",
    "http://127.000.000.001/hook", "http://127.0.0.1#@evil.com/hook",
    # host NAMES that resolve to loopback through the system resolver (/etc/hosts)
    "http://localhost/hook", "http://LOCALHOST./hook", "http://localhost:8080/hook",
]


def default_settings(**over: Any) -> IntegrationsSettings:
    """The product defaults (no allowlist; http allowed outside prod only)."""
    settings = IntegrationsSettings(env="test", **over)
    if not over:  # nothing in this process's environment changed them
        assert settings.allowed_targets == [] and not settings.allow_private_targets
    return settings


def assert_refused_naming(call: Callable[[], Any], field: str) -> None:
    with pytest.raises(errors.ValidationFailed) as caught:
        call()
    assert caught.value.status == 400
    assert caught.value.details is not None and set(caught.value.details) == {field}, \
        caught.value.details


# ---- product defaults, every entry point (in-process) --------------------------------------


@pytest.mark.parametrize("url", REFUSED_EVERYWHERE + LOOPBACK)
def test_default_settings_refuse_private_targets_in_every_field(url: str) -> None:
    s = default_settings()
    assert_refused_naming(lambda: webhook_service.checked_url(url, s), "url")
    assert_refused_naming(lambda: git_service._check_base_url(url, s), "base_url")
    assert_refused_naming(lambda: discord_service.checked_url(url, s), "webhook_url")
    # and at delivery/call time: parse + resolve, as the engine and the git call do
    with pytest.raises(targets.TargetRefused):
        targets.resolve(targets.parse(url, s), s)


def test_production_refuses_http_and_even_allowlisted_names_need_https() -> None:
    prod = IntegrationsSettings(env="prod", secret_key="k" * 40)  # type: ignore[arg-type]
    assert_refused_naming(lambda: webhook_service.checked_url("http://93.184.216.34/h", prod),
                          "url")


def test_discord_urls_are_only_discords_own_hosts() -> None:
    s = default_settings()
    token = "A" * 68
    for url in [f"https://discord.com.evil.example/api/webhooks/1/{token}",
                f"https://evil@discord.com@10.0.0.1/api/webhooks/1/{token}",
                f"https://discord.com:8443/api/webhooks/1/{token}",
                f"http://discord.com/api/webhooks/1/{token}",
                f"https://10.0.0.1/api/webhooks/1/{token}",
                f"https://169.254.169.254/api/webhooks/1/{token}",
                f"https://discord.com/api/webhooks/1/{token}/../../../x"]:
        assert_refused_naming(lambda u=url: discord_service.checked_url(u, s), "webhook_url")  # type: ignore[misc]
    ok = discord_service.checked_url(f"https://discord.com/api/webhooks/1/{token}", s)
    assert ok == f"https://discord.com/api/webhooks/1/{token}"


# ---- DNS: names that resolve to private addresses, and rebinding (in-process) --------------


@pytest.fixture()
def dns(monkeypatch: pytest.MonkeyPatch) -> ScriptedDns:
    """Scripted answers for *.rebind.test names (everything else: the real resolver). It
    replaces socket.getaddrinfo, which both the guard and the HTTP client's connect use, so an
    unpinned connection would look the name up again and follow a changed answer."""
    scripted = ScriptedDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", scripted)
    return scripted


@pytest.fixture()
def pair() -> Iterator[tuple[Receiver, Receiver]]:
    """`checked` on 127.0.0.2 (the allowlisted address) and `elsewhere` on 127.0.0.3, same port."""
    checked = Receiver(host="127.0.0.2", statuses=[201],
                       body={"web_url": "https://gitlab.rebind.test/a/b/-/issues/7", "iid": 7})
    checked.start()
    elsewhere = Receiver(host="127.0.0.3", port=checked.port, statuses=[201],
                         body={"web_url": "https://stolen.example/x", "iid": 9}).start()
    yield checked, elsewhere
    checked.stop()
    elsewhere.stop()


ONLY_127_0_0_2 = {"allowed_targets": ["127.0.0.2/32"]}


@pytest.mark.parametrize("answer", [
    ["10.0.0.5"], ["169.254.169.254"], ["fd00::1"], ["::1"], ["::ffff:192.168.1.1"],
    ["93.184.216.34", "10.0.0.5"],  # one private address among public ones is enough
    ["2606:4700:4700::1111", "fe80::1"],
])
def test_a_name_resolving_to_a_private_address_is_refused_at_configuration(
        dns: ScriptedDns, answer: list[str]) -> None:
    dns.script("inside.rebind.test", answer)
    s = default_settings()
    assert_refused_naming(lambda: webhook_service.checked_url(
        "https://inside.rebind.test/hook", s), "url")
    assert_refused_naming(lambda: git_service._check_base_url(
        "https://inside.rebind.test", s), "base_url")
    assert dns.lookups["inside.rebind.test"] == 2


def webhook_prepared(url: str, s: IntegrationsSettings) -> send.Prepared:
    body = send.dumps({"event": "ping"})
    return send.Prepared(target=targets.parse(url, s), body=body, headers=send.webhook_headers(
        delivery_id=str(uuid.uuid4()), event="ping", secret="s3cret", body=body))


def test_delivery_checks_the_name_again_and_refuses_a_new_private_answer(
        dns: ScriptedDns, pair: tuple[Receiver, Receiver]) -> None:
    checked, elsewhere = pair
    s = default_settings(**ONLY_127_0_0_2)
    url = f"http://hook.rebind.test:{checked.port}/in"
    # saved while the name points at the allowed address, then it is re-pointed
    dns.script("hook.rebind.test", ["127.0.0.2"], ["127.0.0.3"])
    assert webhook_service.checked_url(url, s) == url
    sync = send.send_sync(webhook_prepared(url, s), s)
    assert not sync.delivered and sync.final and "127.0.0.3" in (sync.error or "")

    async def deliver() -> send.Outcome:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            return await send.send_async(client, webhook_prepared(url, s), s)

    outcome = asyncio.run(deliver())
    assert not outcome.delivered and "target refused" in (outcome.error or "")
    assert elsewhere.requests == [] and checked.requests == []


def test_delivery_connects_to_the_checked_address_not_a_second_lookup(
        dns: ScriptedDns, pair: tuple[Receiver, Receiver]) -> None:
    checked, elsewhere = pair
    s = default_settings(**ONLY_127_0_0_2)
    url = f"http://hook.rebind.test:{checked.port}/in"
    # first lookup (the check at send time) → allowed; any later lookup → elsewhere
    dns.script("hook.rebind.test", ["127.0.0.2"], ["127.0.0.3"])
    sync = send.send_sync(webhook_prepared(url, s), s)
    assert sync.delivered, sync

    dns.script("hook.rebind.test", ["127.0.0.2"], ["127.0.0.3"])

    async def deliver() -> send.Outcome:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            return await send.send_async(client, webhook_prepared(url, s), s)

    assert asyncio.run(deliver()).delivered
    assert elsewhere.requests == []
    assert [r.path for r in checked.requests] == ["/in", "/in"]
    assert {r.headers["host"] for r in checked.requests} == {f"hook.rebind.test:{checked.port}"}
    assert dns.lookups["hook.rebind.test"] == 1  # the second run: one lookup, then pinned


def git_issue(base_url: str, s: IntegrationsSettings, token: str) -> providers.CreatedIssue:
    """The git service's sequence: check the stored base_url, then call the provider."""
    targets.check_url(base_url, s)
    return providers.create_issue(provider="gitlab", repository="a/b", base_url=base_url,
                                  token=token, draft=IssueDraft("t", "b", []), settings=s)


def test_git_call_is_pinned_to_the_checked_address(
        dns: ScriptedDns, pair: tuple[Receiver, Receiver]) -> None:
    checked, elsewhere = pair
    s = default_settings(**ONLY_127_0_0_2)
    base = f"http://gitlab.rebind.test:{checked.port}"
    token = "glpat-" + secrets.token_urlsafe(16)
    # the check and the call's own resolution see the allowed address; a third look → elsewhere
    dns.script("gitlab.rebind.test", ["127.0.0.2"], ["127.0.0.2"], ["127.0.0.3"])
    created = git_issue(base, s, token)
    assert created.number == 7
    assert elsewhere.requests == []
    [req] = checked.requests
    assert req.headers["private-token"] == token
    assert req.headers["host"] == f"gitlab.rebind.test:{checked.port}"
    assert req.path == "/api/v4/projects/a%2Fb/issues"


def test_git_call_refuses_a_name_rebound_after_the_check(
        dns: ScriptedDns, pair: tuple[Receiver, Receiver]) -> None:
    """Regression: the git call let the HTTP client look the base_url's name up again after
    the check, so a rebinding answer sent the request (and the token) to any address."""
    checked, elsewhere = pair
    s = default_settings(**ONLY_127_0_0_2)
    base = f"http://gitlab.rebind.test:{checked.port}"
    dns.script("gitlab.rebind.test", ["127.0.0.2"], ["127.0.0.3"])
    with pytest.raises(errors.Conflict) as caught:
        git_issue(base, s, "glpat-" + secrets.token_urlsafe(16))
    assert "127.0.0.3" in str(caught.value.message)
    assert elsewhere.requests == [] and checked.requests == []
    # and a name that stops resolving is a clean 502, not a call elsewhere
    dns.script("gitlab.rebind.test", ["127.0.0.2"], [])
    with pytest.raises(errors.BadGateway):
        git_issue(base, s, "glpat-" + secrets.token_urlsafe(16))
    assert elsewhere.requests == [] and checked.requests == []


# ---- through Envoy on the shared stack -----------------------------------------------------


wait_for = functools.partial(support_wait_for, timeout=60.0, step=0.3)


def new_project(new_client: Callable[..., httpx.Client], token: str,
                name: str) -> dict[str, Any]:
    created = new_client().post("/projects", json={"name": name}, headers=auth(token))
    assert created.status_code == 201, created.text
    project: dict[str, Any] = created.json()["data"]
    slug = project["slug"]
    # integrations learns of the project from bugs' events (eventually); polls from fresh
    # addresses so that waiting spends no rate-limit budget
    wait_for(lambda: new_client().get(f"/projects/{slug}/webhooks", headers=auth(token))
             .status_code == 200, what="project known to integrations")
    return project


def signup(api: httpx.Client, password: str) -> tuple[httpx.Response, str, str]:
    email = f"sec-{uuid.uuid4().hex[:10]}@example.com"
    resp = api.post("/auth/signup", json={"email": email, "password": password,
                                          "display_name": "Sec Tester"})
    assert resp.status_code == 201, resp.text
    return resp, resp.json()["data"]["token"], email


def test_private_targets_are_refused_through_the_gateway_naming_the_field(
        new_client: Callable[..., httpx.Client]) -> None:
    _, token, _ = signup(new_client(), "Pw-" + secrets.token_urlsafe(12))
    slug = new_project(new_client, token, "SSRF Game")["slug"]
    hooks = f"/projects/{slug}/webhooks"
    receiver = Receiver().start()  # allowlisted in the e2e stack
    try:
        made = new_client().post(hooks, headers=auth(token),
                                 json={"url": receiver.url + "/ok", "events": ["bug_created"]})
        assert made.status_code == 201, made.text
        hook_id = made.json()["data"]["id"]
        for url in REFUSED_EVERYWHERE:
            api = new_client()  # each its own rate-limit bucket
            calls = [
                ("url", api.post(hooks, headers=auth(token),
                                 json={"url": url, "events": ["bug_created"]})),
                ("url", api.patch(f"{hooks}/{hook_id}", headers=auth(token), json={"url": url})),
                ("base_url", api.post(f"/projects/{slug}/integrations/git", headers=auth(token),
                                      json={"provider": "gitlab", "repository": "a/b",
                                            "token": "glpat-x", "base_url": url})),
                ("webhook_url", api.put(f"/projects/{slug}/integrations/discord",
                                        headers=auth(token), json={"webhook_url": url})),
                ("webhook_url", api.patch(f"/projects/{slug}/integrations/discord",
                                          headers=auth(token), json={"webhook_url": url})),
            ]
            for field, resp in calls:
                body = resp.json()
                if resp.status_code == 404 and field == "webhook_url" and \
                        resp.request.method == "PATCH":
                    continue  # no Discord integration to change: nothing was saved either
                assert resp.status_code == 400, (url, field, resp.status_code, resp.text)
                assert body["ok"] is False and field in body.get("details", {}), (url, body)
        # nothing was stored: the webhook still points at the receiver, no git settings
        api = new_client()
        assert api.get(f"{hooks}/{hook_id}", headers=auth(token)).json()["data"]["url"] == \
            receiver.url + "/ok"
        assert [h["id"] for h in api.get(hooks, headers=auth(token)).json()["data"]] == [hook_id]
        assert api.get(f"/projects/{slug}/integrations/git",
                       headers=auth(token)).status_code == 404
    finally:
        receiver.stop()


def test_redirects_to_other_addresses_are_never_followed(
        new_client: Callable[..., httpx.Client]) -> None:
    _, token, _ = signup(new_client(), "Pw-" + secrets.token_urlsafe(12))
    slug = new_project(new_client, token, "Redirect Game")["slug"]
    inside = Receiver().start()
    redirector = Receiver(statuses=[302],
                          headers={"Location": inside.url + "/stolen"}).start()
    try:
        api = new_client()
        made = api.post(f"/projects/{slug}/webhooks", headers=auth(token),
                        json={"url": redirector.url + "/hook", "events": ["bug_created"]})
        assert made.status_code == 201, made.text
        ping = api.post(f"/projects/{slug}/webhooks/{made.json()['data']['id']}/test",
                        headers=auth(token))
        assert ping.status_code == 200, ping.text
        assert ping.json()["data"]["status"] != "delivered", ping.text
        # a real event through the worker's delivery engine
        bug = api.post(f"/projects/{slug}/bugs", headers=auth(token),
                       json={"title": "Door opens inward", "category": "gameplay"})
        assert bug.status_code == 201, bug.text
        wait_for(lambda: len(redirector.requests) >= 2, what="the event delivery")
        # GitLab on a redirecting base_url: a clean 502, the token never sent on
        redirector.statuses = [307]
        git = api.post(f"/projects/{slug}/integrations/git", headers=auth(token), json={
            "provider": "gitlab", "repository": "a/b", "token": "glpat-redirect-me",
            "base_url": redirector.url})
        assert git.status_code == 201, git.text
        path = f"/projects/{slug}/bugs/{bug.json()['data']['id']}/git-issue"
        issue = wait_for(lambda: (r := new_client().post(path, headers=auth(token)))
                         .status_code != 404 and r, what="bug known to integrations")
        assert issue.status_code == 502, issue.text
        time.sleep(1.0)
        assert inside.requests == []
    finally:
        inside.stop()
        redirector.stop()


# ---- secrets never leak --------------------------------------------------------------------


def _variants(value: str) -> set[str]:
    """`value` and the encodings a log line or body could carry it in, plus distinctive
    fragments of its random part (a truncated leak is a leak; the masked `…abcd` forms are 4
    characters; prefixes like `sk_live_`, `$argon2id$v=19$` or a JWT header are shared)."""
    out = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value),
           json.dumps(value)[1:-1], value.replace("/", "\\/"),
           base64.b64encode(value.encode()).decode().rstrip("="),
           base64.urlsafe_b64encode(value.encode()).decode().rstrip("="), value.encode().hex()}
    if len(value) >= 28:
        middle = len(value) // 2
        out |= {value[middle - 7:middle + 7], value[-14:]}
    return {v for v in out if len(v) >= 8}


class Secrets:
    """Named secret values, where each may be seen (the one response that shows it)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.allowed_in: dict[str, set[int]] = {}

    def add(self, name: str, value: str, *, shown_by: httpx.Response | None = None) -> None:
        self.values[name] = value
        if shown_by is not None:
            self.allowed_in.setdefault(name, set()).add(id(shown_by))

    def find(self, text: str, *, except_for: int | None = None,
             skip: frozenset[str] = frozenset()) -> list[str]:
        found = []
        for name, value in self.values.items():
            if name in skip or (except_for is not None
                                and except_for in self.allowed_in.get(name, set())):
                continue
            if any(v in text for v in _variants(value)):
                found.append(name)
        return found


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _response_text(resp: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
    return f"{resp.status_code}\n{headers}\n{resp.content.decode('utf-8', 'replace')}"


async def _stream_messages(nats_url: str) -> list[str]:
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        texts: list[str] = []
        for info in await js.streams_info():
            state = info.state
            if not state.messages:
                continue
            for seq in range(max(state.first_seq, 1), state.last_seq + 1):
                try:
                    msg = await js.get_msg(info.config.name or "", seq)
                except (nats.js.errors.NotFoundError, nats.js.errors.BadRequestError):
                    continue  # deleted (or purged meanwhile)
                texts.append(f"{info.config.name} {msg.subject} {msg.headers or {}} "
                             f"{(msg.data or b'').decode('utf-8', 'replace')}")
        return texts
    finally:
        await nc.close()


def _database_rows(dsn: str) -> dict[str, list[str]]:
    """Every row of every table of every database, as text (`row::text`), by db.table."""
    out: dict[str, list[str]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'")]
    base = dsn.rsplit("/", 1)[0]
    for name in names:
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            tables = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
            for schema, table in tables:
                rows = conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
                out[f"{name}.{schema}.{table}"] = [r[0] for r in rows]
    return out


def _one(dsn: str, database: str, sql: str, *args: Any) -> Any:
    base = dsn.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/{database}", autocommit=True) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None, sql
    return row


def test_secrets_never_leak_in_responses_logs_events_or_rows(
        stack: Stack, new_client: Callable[..., httpx.Client]) -> None:
    found = Secrets()
    responses: list[httpx.Response] = []

    def call(method: str, path: str, **kw: Any) -> httpx.Response:
        resp = new_client().request(method, path, **kw)
        responses.append(resp)
        return resp

    # -- a user, a project, and every credential an integration holds ----------------------
    password = "Pw-" + _random(20)
    found.add("password", password)
    signed, token, email = signup(new_client(), password)
    responses.append(signed)
    # a JWT's signature is what is unique to it (the header and claims of two tokens of one
    # user are alike), and any leak of the token holds it
    found.add("bearer token", token.rsplit(".", 1)[1], shown_by=signed)
    login = call("POST", "/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    found.add("bearer token (login)", login.json()["data"]["token"].rsplit(".", 1)[1],
              shown_by=login)
    h = auth(token)

    created = call("POST", "/projects", json={"name": "Secret Game"}, headers=h)
    assert created.status_code == 201, created.text
    slug, api_key = created.json()["data"]["slug"], created.json()["data"]["api_key"]
    found.add("api key", api_key, shown_by=created)
    wait_for(lambda: new_client().get(f"/projects/{slug}/webhooks", headers=h)
             .status_code == 200, what="project known to integrations")

    receiver = Receiver().start()
    gitlab_token = "glpat-" + _random(24)
    gitlab = FakeGitLab(token=gitlab_token, projects=["studio/secret-game"])
    gitlab.start()
    try:
        hook_secret = "whsec_given_" + _random(28)
        hook = call("POST", f"/projects/{slug}/webhooks", headers=h, json={
            "url": receiver.url + "/hook", "events": ["bug_created", "comment_added"],
            "secret": hook_secret})
        assert hook.status_code == 201, hook.text
        found.add("webhook secret", hook_secret, shown_by=hook)
        hook_id = hook.json()["data"]["id"]
        generated = call("POST", f"/projects/{slug}/webhooks", headers=h,
                         json={"url": receiver.url + "/other", "events": ["bug_resolved"]})
        assert generated.status_code == 201, generated.text
        found.add("generated webhook secret", generated.json()["data"]["secret"],
                  shown_by=generated)
        new_secret = "whsec_patched_" + _random(28)
        patched = call("PATCH", f"/projects/{slug}/webhooks/{hook_id}", headers=h,
                       json={"secret": new_secret})
        assert patched.status_code == 200, patched.text
        found.add("patched webhook secret", new_secret, shown_by=patched)

        discord_token = _random(68, string.ascii_letters + string.digits + "_-")
        discord = call("PUT", f"/projects/{slug}/integrations/discord", headers=h, json={
            "webhook_url": f"https://discord.com/api/webhooks/112233445566778899/{discord_token}"})
        assert discord.status_code in (200, 201), discord.text
        found.add("discord token", discord_token)

        git = call("POST", f"/projects/{slug}/integrations/git", headers=h, json={
            "provider": "gitlab", "repository": "studio/secret-game", "token": gitlab_token,
            "base_url": gitlab.url})
        assert git.status_code == 201, git.text
        found.add("git token", gitlab_token)
        steam_key = _random(32, string.ascii_uppercase + string.digits)
        steam = call("POST", f"/projects/{slug}/integrations/steam", headers=h,
                     json={"app_id": 480, "api_key": steam_key})
        assert steam.status_code == 201, steam.text
        found.add("steam key", steam_key)

        # -- use them: SDK traffic with the key, events delivered, a git issue ---------------
        submit = call("POST", "/bugs/submit", headers={"X-API-Key": api_key}, json={
            "title": "Sky turns green", "description": "after the boss", "category": "visual"})
        assert submit.status_code == 201, submit.text
        call("POST", "/sessions/start", json={
            "api_key": api_key, "session_token": "sec-" + uuid.uuid4().hex, "platform": "Windows",
            "game_version": "1.0.0", "device_info": "PC"})
        bug = call("POST", f"/projects/{slug}/bugs", headers=h,
                   json={"title": "Falls through the map", "category": "gameplay"})
        assert bug.status_code == 201, bug.text
        bug_id = bug.json()["data"]["id"]
        call("POST", f"/projects/{slug}/bugs/{bug_id}/comments", headers=h,
             json={"body": "seen it twice"})
        receiver_got = wait_for(lambda: len(receiver.requests) >= 2, what="webhook deliveries")
        assert receiver_got
        issue_path = f"/projects/{slug}/bugs/{bug_id}/git-issue"
        issue = wait_for(lambda: (r := new_client().post(issue_path, headers=h))
                         .status_code != 404 and r, what="bug known to integrations")
        responses.append(issue)
        assert issue.status_code == 201, issue.text
        assert gitlab.requests[-1].headers["private-token"] == gitlab_token  # sent only there
        # a wrong token: the provider's 401 becomes a 502 that does not echo it
        wrong_token = "glpat-wrong-" + _random(24)
        found.add("wrong git token", wrong_token)
        call("POST", f"/projects/{slug}/integrations/git", headers=h, json={
            "provider": "gitlab", "repository": "studio/secret-game", "token": wrong_token,
            "base_url": gitlab.url})
        bug2 = call("POST", f"/projects/{slug}/bugs", headers=h,
                    json={"title": "Audio pops", "category": "audio"})
        issue2_path = f"/projects/{slug}/bugs/{bug2.json()['data']['id']}/git-issue"
        failed = wait_for(lambda: (r := new_client().post(issue2_path, headers=h))
                          .status_code != 404 and r, what="second bug known to integrations")
        responses.append(failed)
        assert failed.status_code == 502, failed.text

        # -- every read of those resources ---------------------------------------------------
        for path in ["/auth/me", "/auth/export", "/projects", f"/projects/{slug}",
                     f"/projects/{slug}/api-key", f"/projects/{slug}/webhooks",
                     f"/projects/{slug}/webhooks/{hook_id}",
                     f"/projects/{slug}/webhooks/{hook_id}/deliveries",
                     f"/projects/{slug}/integrations/discord",
                     f"/projects/{slug}/integrations/git",
                     f"/projects/{slug}/integrations/steam", issue_path,
                     f"/projects/{slug}/bugs/{bug_id}", f"/projects/{slug}/bugs",
                     "/notifications", f"/projects/{slug}/team"]:
            resp = call("GET", path, headers=h)
            assert resp.status_code < 500, (path, resp.text)
        masked = call("GET", f"/projects/{slug}/api-key", headers=h).json()["data"]["api_key"]
        assert masked == f"sk_live_…{api_key[-4:]}"
        deliveries = call("GET", f"/projects/{slug}/webhooks/{hook_id}/deliveries",
                          headers=h).json()["data"]
        for d in deliveries:
            call("GET", f"/projects/{slug}/webhooks/{hook_id}/deliveries/{d['id']}", headers=h)
        call("POST", f"/projects/{slug}/webhooks/{hook_id}/test", headers=h)

        # -- error paths carrying secrets in the request -------------------------------------
        call("POST", "/auth/signup", json={"email": email, "password": password,
                                           "display_name": "Again"})  # 409: email taken
        call("POST", "/auth/login", json={"email": email, "password": password + "!"})
        call("POST", "/auth/login", json={"email": "nobody-" + email, "password": password})
        call("POST", f"/projects/{slug}/webhooks", headers=h,
             json={"url": "ftp://10.0.0.1/", "events": ["bug_created"], "secret": hook_secret})
        call("POST", f"/projects/{slug}/webhooks", headers=h,
             json={"url": receiver.url, "events": ["no_such_event"], "secret": hook_secret})
        call("POST", f"/projects/{slug}/integrations/git", headers=h, json={
            "provider": "bitbucket", "repository": "a/b", "token": gitlab_token})
        call("POST", f"/projects/{slug}/integrations/git", headers=h, json={
            "provider": "gitlab", "repository": "a/b", "token": gitlab_token + " x"})
        call("POST", f"/projects/{slug}/integrations/steam", headers=h,
             json={"app_id": 480, "api_key": steam_key + "-bad"})
        call("PUT", f"/projects/{slug}/integrations/discord", headers=h, json={
            "webhook_url": f"https://discord.evil/api/webhooks/1/{discord_token}"})
        call("POST", "/bugs/submit", headers={"X-API-Key": api_key + "x"},
             json={"title": "x", "category": "visual"})
        call("POST", "/sessions/start", json={"api_key": api_key[:-1], "session_token": "s"})
        call("GET", f"/projects/{slug}/webhooks/{uuid.uuid4()}", headers=h)
        call("GET", "/projects", headers={"Authorization": f"Bearer {token}x"})
        call("GET", f"/projects/{slug}", headers={"X-API-Key": api_key})
    finally:
        receiver.stop()
        gitlab.stop()

    # the argon2 hash of the password, from the auth database
    dsn = stack.urls.postgres_dsn
    (password_hash,) = _one(dsn, "auth", "SELECT password_hash FROM users WHERE email = %s",
                            email)
    found.add("password hash", password_hash)

    # (a) responses: no secret except where it is shown once
    # the scans see what is there: the key in the one answer that shows it, the password in
    # the request that sent it
    assert found.find(_response_text(created)) == ["api key"]
    assert "password" in found.find(login.request.content.decode())
    leaks: dict[str, list[Any]] = {}
    leaks["responses"] = [(r.request.method, str(r.request.url.path), r.status_code, name)
                          for r in responses
                          for name in found.find(_response_text(r), except_for=id(r))]
    # nothing the webhook receiver got holds a secret (the signature is made with one)
    leaks["webhook deliveries"] = [(r.path, name) for r in receiver.requests
                                   for name in found.find(r.body.decode() + json.dumps(r.headers))]

    # (b) every log file of the stack, once this test's requests are in them: Envoy writes its
    # access log out every second, and the workers may still be logging
    def log_texts() -> dict[str, str]:
        return {p.name: p.read_bytes().decode("utf-8", "replace")
                for p in sorted(stack.log_dir.rglob("*")) if p.is_file()}

    wait_for(lambda: any(slug in text for text in log_texts().values()), timeout=30,
             what="a log line mentioning this test's project (is the scan reading logs?)")
    time.sleep(2.0)
    leaks["logs"] = [(name, line_no, secret, line[:300])
                     for name, text in log_texts().items()
                     for line_no, line in enumerate(text.splitlines(), 1)
                     for secret in found.find(line)]

    # (c) every message of every JetStream stream (events, KV buckets)
    messages = asyncio.run(_stream_messages(stack.urls.nats))
    assert any(slug in m for m in messages)
    leaks["events"] = [(m[:200], name) for m in messages for name in found.find(m)]

    # (d) at rest: no plaintext anywhere; the hash only where it belongs
    rows = _database_rows(dsn)
    row_leaks = sorted({(table, name) for table, texts in rows.items() for t in texts
                        for name in found.find(t)})
    leaks["rows"] = [leak for leak in row_leaks if leak != ("auth.public.users", "password hash")]
    assert leaks == {"responses": [], "webhook deliveries": [], "logs": [], "events": [],
                     "rows": []}, leaks
    assert ("auth.public.users", "password hash") in row_leaks  # the scan sees what is there
    assert password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(password_hash, password)
    (key_hash,) = _one(dsn, "bugs", "SELECT api_key_hash FROM projects WHERE slug = %s", slug)
    assert key_hash == hash_api_key(api_key) == hashlib.sha256(api_key.encode()).hexdigest()
    # integrations credentials: Fernet tokens that decrypt to the values (so, encrypted)
    key = stack.extra_env.get("INTEGRATIONS_SECRET_KEY", DEV_SECRET_KEY)
    (project_id,) = _one(dsn, "integrations", "SELECT id FROM projects WHERE slug = %s", slug)
    stored = {
        "webhook": _one(dsn, "integrations", "SELECT secret_encrypted FROM webhooks "
                        "WHERE id = %s", hook_id)[0],
        "discord": _one(dsn, "integrations", "SELECT webhook_url_encrypted FROM "
                        "discord_integrations WHERE project_id = %s", project_id)[0],
        "git": _one(dsn, "integrations", "SELECT token_encrypted FROM git_integrations "
                    "WHERE project_id = %s", project_id)[0],
        "steam": _one(dsn, "integrations", "SELECT api_key_encrypted FROM steam_integrations "
                      "WHERE project_id = %s", project_id)[0],
    }
    assert crypto.decrypt(key, stored["webhook"]) == new_secret
    assert crypto.decrypt(key, stored["discord"]).endswith("/" + discord_token)
    assert crypto.decrypt(key, stored["git"]) == wrong_token
    assert crypto.decrypt(key, stored["steam"]) == steam_key
    assert all(v.startswith("gAAAAA") for v in stored.values()), stored
