"""Renders the Envoy v3 bootstrap of the Bugnet gateway from the route table in ``routes``.

Invariants of the rendered config:
- Every family of ``routes.FAMILIES`` becomes one Envoy route, in order, matching both
  ``/api/...`` and ``/api/v1/...``; the service always sees ``/api/...``. Anything else reaches
  a last catch-all route whose cluster does not exist, which Envoy answers with 404.
- HTTP filters run in this order, and the order is load-bearing:
  1. Lua: strips client-sent ``x-jwt-payload``; on the way out it is the last to touch every
     response, so it can turn ``x-ratelimit-reset`` into a Unix time and add ``Retry-After``.
  2. local_ratelimit: one instance, so every route of a class shares one bucket per client IP.
     Before jwt_authn, so a 401 also carries the ``X-RateLimit-*`` headers.
  3. jwt_authn: per route ``bearer`` (required), ``optional`` (missing passes, invalid fails)
     or disabled.
  4. buffer: caps request bodies (1 MiB, 20 MiB on SDK uploads) with a 413.
  5. router.
- Envoy's own replies are rewritten into the API's error envelope by ``local_reply_config``;
  upstream responses are never touched.
- With a usage collector, every request (served or refused by Envoy) is also streamed to it
  over gRPC (ALS) with its ``X-API-Key`` header; nothing else ever logs that header.
- With a global rate limit service (``rate_limit_service``; envoyproxy/ratelimit over gRPC),
  filter 2 is ``envoy.filters.http.ratelimit`` instead of local_ratelimit: the same
  descriptors (rate class, client IP) are counted by the shared service, so several Envoy
  replicas enforce one budget per client. :func:`render_ratelimit_config` renders that
  service's config from the same numbers.
- With a stats port, a second listener serves only ``GET /stats/prometheus`` and ``/ready``
  of the admin interface (which stays on 127.0.0.1), for Prometheus and Kubernetes probes.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bugnet_gateway.routes import (
    FAMILIES,
    MIB,
    RATE_CLASSES,
    SERVICES,
    RateClass,
    RouteFamily,
    Service,
)

Config = dict[str, Any]

ROUTE_TIMEOUT = "30s"
STREAM_IDLE_TIMEOUT = "30s"
CONNECT_TIMEOUT = "1s"
# Envoy closes a pooled upstream connection after this long idle, before the service's server
# would: granian closes one after GRANIAN_KEEPALIVE_MS (bugnet_stack.config, 60 s), gunicorn after
# GUNICORN_KEEPALIVE (75 s). Otherwise a server closes an idle connection just as Envoy reuses
# it, and the request on it fails with a 503 that is not retried (a POST may have been read);
# the held load measured 11 in 72,000 requests (upstream_cx_destroy_remote_with_active_rq)
# with Envoy's default of one hour.
UPSTREAM_IDLE_TIMEOUT_S = 20
JWKS_PATH = "/api/auth/jwks.json"
JWKS_CACHE = "300s"
JWT_ISSUER = "bugnet"
JWT_AUDIENCES = ("bugnet",)
JWT_PROVIDER = "bugnet"
PAYLOAD_HEADER = "x-jwt-payload"
CLIENT_IP_HEADER = "x-bugnet-client-ip"
METADATA_NAMESPACE = "bugnet"
RATE_CLASS_KEY = "rate_class"
# Never defined as a cluster: Envoy answers a route to it with cluster_not_found_response_code.
NO_SUCH_ENDPOINT_CLUSTER = "bugnet-no-such-endpoint"
MAX_DOWNSTREAM_CONNECTIONS = 50_000
# Per-IP buckets kept at once; beyond this the least recently used is evicted (its client
# starts with a full bucket again), so keep it well above the clients seen per minute.
MAX_TRACKED_CLIENTS = 100_000

LUA = "envoy.filters.http.lua"
LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit"
GLOBAL_RATELIMIT = "envoy.filters.http.ratelimit"
JWT_AUTHN = "envoy.filters.http.jwt_authn"
BUFFER = "envoy.filters.http.buffer"
ROUTER = "envoy.filters.http.router"


@dataclass(frozen=True)
class RateLimits:
    """Requests per minute per client IP for each rate class (spec §3)."""

    public: int = 30
    user: int = 120
    login: int = 10

    def __post_init__(self) -> None:
        for rate_class in RATE_CLASSES:
            if self.per_minute(rate_class) < 1:
                raise ValueError(f"{rate_class} limit must be at least 1 request per minute")

    def per_minute(self, rate_class: RateClass) -> int:
        return {"public": self.public, "user": self.user, "login": self.login}[rate_class]


def render_config(
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int,
    admin_port: int,
    upstreams: dict[str, tuple[str, int]],
    limits: RateLimits,
    xff_num_trusted_hops: int = 0,
    access_log: bool = True,
    usage_collector: tuple[str, int] | None = None,
    rate_limit_service: tuple[str, int] | None = None,
    stats_port: int | None = None,
) -> str:
    """The Envoy v3 bootstrap as YAML text."""
    bootstrap = build_bootstrap(
        listen_host=listen_host,
        listen_port=listen_port,
        admin_port=admin_port,
        upstreams=upstreams,
        limits=limits,
        xff_num_trusted_hops=xff_num_trusted_hops,
        access_log=access_log,
        usage_collector=usage_collector,
        rate_limit_service=rate_limit_service,
        stats_port=stats_port,
    )
    text: str = yaml.dump(bootstrap, Dumper=_Dumper, sort_keys=False, width=100)
    return text


def build_bootstrap(
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int,
    admin_port: int,
    upstreams: dict[str, tuple[str, int]],
    limits: RateLimits,
    xff_num_trusted_hops: int = 0,
    access_log: bool = True,
    usage_collector: tuple[str, int] | None = None,
    rate_limit_service: tuple[str, int] | None = None,
    stats_port: int | None = None,
) -> Config:
    """The Envoy v3 bootstrap as plain data (what :func:`render_config` serialises).

    ``usage_collector`` (host, port): also stream every request's access-log entry over gRPC
    to the usage collector (``python -m bugnet_gateway.usage``).
    ``rate_limit_service`` (host, port): enforce the per-client limits with an
    envoyproxy/ratelimit service (gRPC) shared by every Envoy replica instead of this
    process's own buckets.
    ``stats_port``: also listen there (on ``listen_host``) for ``/stats/prometheus`` and
    ``/ready`` only.
    """
    unknown = sorted(set(upstreams) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown upstream service(s) {unknown}; known: {list(SERVICES)}")
    if "auth" not in upstreams:
        raise ValueError("the auth upstream is required: the gateway fetches its JWKS")
    if xff_num_trusted_hops < 0:
        raise ValueError("xff_num_trusted_hops must be >= 0")
    if stats_port is not None and stats_port in (listen_port, admin_port):
        raise ValueError("the stats port must differ from the listen and admin ports")

    hcm: Config = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bugnet",
        "codec_type": "AUTO",
        "server_name": "bugnet-gateway",
        "use_remote_address": True,
        "xff_num_trusted_hops": xff_num_trusted_hops,
        "normalize_path": True,
        "merge_slashes": True,
        "generate_request_id": True,
        # A client's own X-Request-Id (a game SDK's, a support ticket's) is kept, so it can be
        # followed through every log line down to the workers; the services refuse ids that
        # are not 8-128 printable characters and make their own.
        "preserve_external_request_id": True,
        "always_set_request_id_in_response": True,
        "request_headers_timeout": "10s",
        # A client that stops sending mid-body (or a slowloris) is cut off after 30 s without a
        # byte (Envoy's default is 5 minutes), answered 408 in the envelope.
        "stream_idle_timeout": STREAM_IDLE_TIMEOUT,
        "common_http_protocol_options": {
            # WSGI servers fold "-" and "_" together: x_jwt_payload would pass as x-jwt-payload.
            "headers_with_underscores_action": "DROP_HEADER",
        },
        "route_config": _route_config(),
        "local_reply_config": _local_reply_config(),
        "http_filters": _http_filters(upstreams["auth"], limits, rate_limit_service),
    }
    access_logs: list[Config] = []
    if access_log:
        access_logs.append(_stdout_access_log())
    if usage_collector is not None:
        access_logs.append(_usage_access_log())
    if access_logs:
        hcm["access_log"] = access_logs
    clusters = [_cluster(service, upstreams.get(service)) for service in SERVICES]
    if usage_collector is not None:
        clusters.append(_usage_cluster(usage_collector))
    if rate_limit_service is not None:
        clusters.append(_grpc_cluster(RATELIMIT_CLUSTER, rate_limit_service))
    listeners: list[Config] = [
        {
            "name": "public",
            "address": _socket_address(listen_host, listen_port),
            "filter_chains": [
                {
                    "filters": [
                        {
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": hcm,
                        }
                    ]
                }
            ],
        }
    ]
    if stats_port is not None:
        listeners.append(_stats_listener(listen_host, stats_port))
        clusters.append(_admin_cluster(admin_port))

    return {
        "admin": {"address": _socket_address("127.0.0.1", admin_port)},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                    },
                }
            ]
        },
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def _socket_address(host: str, port: int) -> Config:
    return {"socket_address": {"address": host, "port_value": port}}


def _cluster(service: Service, upstream: tuple[str, int] | None) -> Config:
    """One cluster per service; a service without an upstream gets no endpoints, so a 503."""
    endpoints: list[Config] = []
    cluster_type = "STATIC"
    if upstream is not None:
        host, port = upstream
        endpoints = [{"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}]
        if not _is_ip(host):
            cluster_type = "STRICT_DNS"
    cluster: Config = {
        "name": service,
        "type": cluster_type,
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": f"{UPSTREAM_IDLE_TIMEOUT_S}s"},
                "explicit_http_config": {"http_protocol_options": {}},
            }
        },
        "load_assignment": {"cluster_name": service, "endpoints": endpoints},
    }
    if cluster_type == "STRICT_DNS":
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- routes -------------------------------------------------------------------------------


def _route_config() -> Config:
    return {
        "name": "bugnet",
        # The catch-all route names a cluster that does not exist on purpose.
        "validate_clusters": False,
        "max_direct_response_body_size_bytes": MAX_STATIC_BYTES,
        "request_headers_to_add": [
            {
                "header": {
                    "key": CLIENT_IP_HEADER,
                    "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                },
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
        "response_headers_to_remove": ["x-envoy-upstream-service-time"],
        "virtual_hosts": [
            {
                "name": "bugnet",
                "domains": ["*"],
                "routes": [*(_family_route(f) for f in FAMILIES), _no_such_endpoint_route()],
            }
        ],
    }


def _family_route(family: RouteFamily) -> Config:
    match: Config = {"safe_regex": {"regex": family.envoy_path_regex}}
    if family.methods is not None:
        match["headers"] = [
            {
                "name": ":method",
                "string_match": {"safe_regex": {"regex": "|".join(family.methods)}},
            }
        ]
    if family.static is not None:
        return _static_route(family, match)
    per_filter: Config = {JWT_AUTHN: _jwt_per_route(family)}
    if family.body_cap != "default":
        per_filter[BUFFER] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "buffer": {"max_request_bytes": family.body_limit_bytes},
        }
    return {
        "name": family.name,
        "match": match,
        "route": {
            "cluster": family.service,
            "regex_rewrite": {"pattern": {"regex": "^/api/v1/"}, "substitution": "/api/"},
            "timeout": ROUTE_TIMEOUT,
            "retry_policy": _idempotent_retry_policy(),
            "rate_limits": _rate_limit_actions(family),
        },
        "metadata": _route_metadata(family.service, family.body_limit_bytes),
        "typed_per_filter_config": per_filter,
    }


# The gateway's own documents (generated by bugnet_gateway.openapi, shipped in the package).
STATIC_DIR = Path(str(resources.files("bugnet_gateway") / "static"))
STATIC_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8"}
MAX_STATIC_BYTES = 8 * MIB


def _static_route(family: RouteFamily, match: Config) -> Config:
    assert family.static is not None
    path = STATIC_DIR / family.static
    return {
        "name": family.name,
        "match": match,
        "direct_response": {"status": 200, "body": {"filename": str(path)}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": STATIC_TYPES[path.suffix]},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {"header": {"key": "cache-control", "value": "public, max-age=300"},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
        ],
        "metadata": _route_metadata("gateway", MIB),
        "typed_per_filter_config": {JWT_AUTHN: _jwt_disabled()},
    }


def _no_such_endpoint_route() -> Config:
    return {
        "name": "gateway.no-such-endpoint",
        "match": {"prefix": "/"},
        "route": {
            "cluster": NO_SUCH_ENDPOINT_CLUSTER,
            "cluster_not_found_response_code": "NOT_FOUND",
            # A route (not a direct_response) so the public class's actions apply to it too.
            "rate_limits": [{"actions": [_rate_class_entry("public"), {"remote_address": {}}]}],
        },
        "metadata": _route_metadata("gateway", MIB),
        "typed_per_filter_config": {JWT_AUTHN: _jwt_disabled()},
    }


def _route_metadata(service: str, body_limit_bytes: int) -> Config:
    # Read by local_reply_config and the access log through %METADATA(ROUTE:bugnet:...)%.
    return {
        "filter_metadata": {
            METADATA_NAMESPACE: {
                "service": service,
                "body_limit_mb": str(body_limit_bytes // MIB),
            }
        }
    }


def _idempotent_retry_policy() -> Config:
    return {
        "retry_on": "connect-failure,reset",
        "num_retries": 2,
        "retriable_request_headers": [
            {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}
        ],
    }


def _rate_class_entry(rate_class: RateClass) -> Config:
    return {"generic_key": {"descriptor_key": RATE_CLASS_KEY, "descriptor_value": rate_class}}


def _rate_limit_actions(family: RouteFamily) -> list[Config]:
    """Exactly one descriptor per request: (rate_class, remote_address)."""
    client_ip: Config = {"remote_address": {}}
    if family.rate_class == "login":
        return [{"actions": [_rate_class_entry("login"), client_ip]}]
    if family.auth == "none":
        return [{"actions": [_rate_class_entry("public"), client_ip]}]

    def when_authorization(present: bool, rate_class: RateClass) -> Config:
        # header_value_match yields no descriptor at all when it does not match, so of these
        # two entries exactly one produces a descriptor.
        return {
            "header_value_match": {
                "descriptor_key": RATE_CLASS_KEY,
                "descriptor_value": rate_class,
                "expect_match": present,
                "headers": [{"name": "authorization", "present_match": True}],
            }
        }

    return [
        {"actions": [when_authorization(True, "user"), client_ip]},
        {"actions": [when_authorization(False, "public"), client_ip]},
    ]


def _jwt_per_route(family: RouteFamily) -> Config:
    if family.auth == "none":
        return _jwt_disabled()
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
        "requirement_name": family.auth,
    }


def _jwt_disabled() -> Config:
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
        "disabled": True,
    }


# --- filters -------------------------------------------------------------------------------


def _http_filters(
    auth_upstream: tuple[str, int],
    limits: RateLimits,
    rate_limit_service: tuple[str, int] | None = None,
) -> list[Config]:
    rate_limit: Config = (
        {"name": LOCAL_RATELIMIT, "typed_config": _local_ratelimit(limits)}
        if rate_limit_service is None
        else {"name": GLOBAL_RATELIMIT, "typed_config": _global_ratelimit()}
    )
    return [
        {
            "name": LUA,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": _lua_source()},
            },
        },
        rate_limit,
        {"name": JWT_AUTHN, "typed_config": _jwt_authn(auth_upstream)},
        {
            "name": BUFFER,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": MIB,
            },
        },
        {
            "name": ROUTER,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                # Kept on: the rewrite records x-envoy-original-path, which the access log reads.
                "suppress_envoy_headers": False,
            },
        },
    ]


def _lua_source() -> str:
    return resources.files("bugnet_gateway").joinpath("gateway_headers.lua").read_text()


def _per_minute_bucket(limit: int) -> Config:
    # Refills continuously at limit/60 tokens per second; a full bucket allows a burst of limit.
    return {"max_tokens": limit, "tokens_per_fill": limit, "fill_interval": "60s"}


def _local_ratelimit(limits: RateLimits) -> Config:
    always_on = {"numerator": 100, "denominator": "HUNDRED"}
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "bugnet_rate_limit",
        # Only consumed by a request that yields no descriptor, which no route allows.
        "token_bucket": _per_minute_bucket(1_000_000),
        "always_consume_default_token_bucket": False,
        "filter_enabled": {"runtime_key": "bugnet.rate_limit.enabled", "default_value": always_on},
        "filter_enforced": {
            "runtime_key": "bugnet.rate_limit.enforced",
            "default_value": always_on,
        },
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        "max_dynamic_descriptors": MAX_TRACKED_CLIENTS,
        "descriptors": [
            {
                # An empty value makes a bucket per distinct client address.
                "entries": [
                    {"key": RATE_CLASS_KEY, "value": rate_class},
                    {"key": "remote_address", "value": ""},
                ],
                "token_bucket": _per_minute_bucket(limits.per_minute(rate_class)),
            }
            for rate_class in RATE_CLASSES
        ],
    }


# --- global rate limit (envoyproxy/ratelimit) ------------------------------------------------
# Several Envoy replicas each keeping their own buckets would let a client through N times its
# limit. With a rate limit service, every replica asks it about the same descriptors the local
# buckets use: (rate_class, remote_address), produced by each route's ``rate_limits`` actions.
RATELIMIT_CLUSTER = "bugnet-ratelimit"
RATELIMIT_DOMAIN = "bugnet"
# How long a request may wait for the service's verdict; past it (or with the service down)
# the request passes: availability over limits (failure_mode_deny false).
RATELIMIT_TIMEOUT = "0.25s"


def _global_ratelimit() -> Config:
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
        "domain": RATELIMIT_DOMAIN,
        "stage": 0,
        "request_type": "both",
        "timeout": RATELIMIT_TIMEOUT,
        "failure_mode_deny": False,
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        "rate_limit_service": {
            "grpc_service": {"envoy_grpc": {"cluster_name": RATELIMIT_CLUSTER}},
            "transport_api_version": "V3",
        },
    }


def build_ratelimit_config(limits: RateLimits) -> Config:
    """envoyproxy/ratelimit's config for the descriptors the routes produce (plain data).

    The service counts fixed one-minute windows (``unit: minute``); the local buckets refill
    continuously. Both allow ``limit`` requests per client IP and class per minute.
    """
    return {
        "domain": RATELIMIT_DOMAIN,
        "descriptors": [
            {
                "key": RATE_CLASS_KEY,
                "value": rate_class,
                "descriptors": [
                    {
                        # No value: one counter per distinct client address.
                        "key": "remote_address",
                        "rate_limit": {
                            "unit": "minute",
                            "requests_per_unit": limits.per_minute(rate_class),
                        },
                    }
                ],
            }
            for rate_class in RATE_CLASSES
        ],
    }


def render_ratelimit_config(limits: RateLimits) -> str:
    """The YAML file envoyproxy/ratelimit loads (``$RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/config``)."""
    header = (
        "# envoyproxy/ratelimit config of the Bugnet gateway's global rate limit, generated by\n"
        f"#   python -m bugnet_gateway.render --ratelimit-config {_limit_args(limits)}\n"
        "# Do not edit: regenerate it (tests check it is up to date).\n"
    )
    body: str = yaml.dump(build_ratelimit_config(limits), Dumper=_Dumper, sort_keys=False,
                          width=100)
    return header + body


def _limit_args(limits: RateLimits) -> str:
    return (f"--public-limit {limits.public} --user-limit {limits.user} "
            f"--login-limit {limits.login}")


def _jwt_authn(auth_upstream: tuple[str, int]) -> Config:
    host, port = auth_upstream
    authority = f"[{host}]" if ":" in host else host
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {
            JWT_PROVIDER: {
                "issuer": JWT_ISSUER,
                "audiences": list(JWT_AUDIENCES),
                "remote_jwks": {
                    "http_uri": {
                        "uri": f"http://{authority}:{port}{JWKS_PATH}",
                        "cluster": "auth",
                        "timeout": "2s",
                    },
                    "cache_duration": JWKS_CACHE,
                    # The listener does not wait for auth; a failed fetch is retried each second.
                    "async_fetch": {"fast_listener": True, "failed_refetch_duration": "1s"},
                },
                # Only the header: the default also reads ?access_token=, which leaks into logs.
                "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
                "forward": True,
                "forward_payload_header": PAYLOAD_HEADER,
            }
        },
        "requirement_map": {
            "bearer": {"provider_name": JWT_PROVIDER},
            "optional": {
                "requires_any": {
                    "requirements": [{"provider_name": JWT_PROVIDER}, {"allow_missing": {}}]
                }
            },
        },
    }


# --- local replies and access log ------------------------------------------------------------


def _envelope(error: str, code: str) -> Config:
    return {
        "json_format": {"ok": False, "error": error, "code": code},
        "content_type": "application/json",
    }


def _status_is(status: int) -> Config:
    return {
        "status_code_filter": {
            "comparison": {
                "op": "EQ",
                "value": {"default_value": status, "runtime_key": f"bugnet.local_reply.{status}"},
            }
        }
    }


SERVICE = f"%METADATA(ROUTE:{METADATA_NAMESPACE}:service)%"
BODY_LIMIT_MB = f"%METADATA(ROUTE:{METADATA_NAMESPACE}:body_limit_mb)%"

LOCAL_REPLIES: tuple[tuple[int, str, str], ...] = (
    (400, "Malformed request: %LOCAL_REPLY_BODY%", "bad_request"),
    (401, "Missing or invalid bearer token: %LOCAL_REPLY_BODY%", "unauthorized"),
    # jwt_authn's 403 (a well-signed token for another audience) is an invalid token: 401.
    (403, "Token not accepted: %LOCAL_REPLY_BODY%", "unauthorized"),
    (404, "No such endpoint", "not_found"),
    (408, "Request not received in time", "request_timeout"),
    (413, f"Request body too large (limit {BODY_LIMIT_MB} MB)", "payload_too_large"),
    (429, "Too many requests, retry after the time in the Retry-After header", "rate_limited"),
    (431, "Request headers too large", "headers_too_large"),
    (502, f"The {SERVICE} service is unavailable", "service_unavailable"),
    (503, f"The {SERVICE} service is unavailable", "service_unavailable"),
    (504, f"The {SERVICE} service did not answer in time", "timeout"),
)


# Envoy's own replies whose status the API contract spells differently. Only jwt_authn makes
# 403s at the gateway, and every one of them is a token the API does not accept.
LOCAL_STATUS_OVERRIDES: dict[int, int] = {403: 401}


def _local_reply_config() -> Config:
    # The gateway's own documents are direct responses (200), which are local replies too:
    # the first mapper passes them through untouched (their routes set the content type).
    documents: Config = {
        "filter": {"status_code_filter": {"comparison": {
            "op": "LE",
            "value": {"default_value": 299, "runtime_key": "bugnet.local_reply.documents"},
        }}},
        "body_format_override": {"text_format": "%LOCAL_REPLY_BODY%"},
    }
    return {
        "mappers": [documents] + [
            {"filter": _status_is(status), "body_format_override": _envelope(error, code),
             **({"status_code": LOCAL_STATUS_OVERRIDES[status]}
                if status in LOCAL_STATUS_OVERRIDES else {})}
            for status, error, code in LOCAL_REPLIES
        ],
        "body_format": _envelope("%LOCAL_REPLY_BODY%", "gateway_error"),
    }


def _stdout_access_log() -> Config:
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {
                "json_format": {
                    "time": "%START_TIME%",
                    "method": "%REQ(:METHOD)%",
                    "path": "%PATH(NQ)%",
                    "status": "%RESPONSE_CODE%",
                    "duration_ms": "%DURATION%",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                    "client_ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                    "route": "%ROUTE_NAME%",
                    "service": SERVICE,
                    "response_flags": "%RESPONSE_FLAGS%",
                    "details": "%RESPONSE_CODE_DETAILS%",
                    "bytes_received": "%BYTES_RECEIVED%",
                    "bytes_sent": "%BYTES_SENT%",
                    "user_agent": "%REQ(USER-AGENT)%",
                }
            },
        },
    }


# Usage: Envoy streams every request's entry to the collector over gRPC (the ALS). Not a log
# file: the entry carries the request's X-API-Key (to attribute SDK requests to a project),
# which must never reach a disk; the collector hashes it in memory.
USAGE_CLUSTER = "bugnet-usage"
USAGE_LOG_NAME = "bugnet-usage"
USAGE_HEADERS_TO_LOG = ("x-api-key",)


def _usage_access_log() -> Config:
    return {
        "name": "envoy.access_loggers.http_grpc",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            "common_config": {
                "log_name": USAGE_LOG_NAME,
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": USAGE_CLUSTER}},
                # Entries are batched per worker thread and sent at least every second.
                "buffer_flush_interval": "1s",
                "buffer_size_bytes": 16384,
            },
            "additional_request_headers_to_log": list(USAGE_HEADERS_TO_LOG),
        },
    }


def _usage_cluster(collector: tuple[str, int]) -> Config:
    return _grpc_cluster(USAGE_CLUSTER, collector)


def _grpc_cluster(name: str, address: tuple[str, int]) -> Config:
    """A cluster of one gRPC (HTTP/2) endpoint, by IP or by DNS name."""
    host, port = address
    cluster: Config = {
        "name": name,
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}
            ],
        },
    }
    if cluster["type"] == "STRICT_DNS":
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


# --- stats listener -----------------------------------------------------------------------------
# The admin interface can stop Envoy and change its runtime: it stays on 127.0.0.1. This
# listener forwards only the read-only paths Prometheus and Kubernetes probes need.
ADMIN_CLUSTER = "bugnet-admin"
STATS_PATHS = ("/stats/prometheus", "/ready")


def _stats_listener(host: str, port: int) -> Config:
    get_only = [{"name": ":method", "string_match": {"exact": "GET"}}]
    routes: list[Config] = [
        {"match": {"path": path, "headers": get_only}, "route": {"cluster": ADMIN_CLUSTER}}
        for path in STATS_PATHS
    ]
    routes.append({"match": {"prefix": "/"}, "direct_response": {"status": 404}})
    return {
        "name": "stats",
        "address": _socket_address(host, port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "bugnet_stats",
                            "codec_type": "AUTO",
                            "normalize_path": True,
                            "route_config": {
                                "name": "stats",
                                "virtual_hosts": [
                                    {"name": "stats", "domains": ["*"], "routes": routes}
                                ],
                            },
                            "http_filters": [
                                {
                                    "name": ROUTER,
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                                    },
                                }
                            ],
                        },
                    }
                ]
            }
        ],
    }


def _admin_cluster(admin_port: int) -> Config:
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address("127.0.0.1", admin_port)}}]}
            ],
        },
    }


# --- YAML and CLI ----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Plain YAML for humans: literal blocks for multi-line strings, no anchors or aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _upstream(text: str) -> tuple[str, tuple[str, int]]:
    name, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not sep or not colon or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected SERVICE=HOST:PORT, got {text!r}")
    return name, (host.strip("[]"), int(port))


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bugnet_gateway.render", description="Render the gateway's Envoy config."
    )
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, help="required unless --ratelimit-config")
    parser.add_argument("--admin-port", type=int, help="required unless --ratelimit-config")
    parser.add_argument(
        "--upstream",
        type=_upstream,
        action="append",
        default=[],
        metavar="SERVICE=HOST:PORT",
        help="one per service: " + ", ".join(SERVICES),
    )
    defaults = RateLimits()
    parser.add_argument("--public-limit", type=int, default=defaults.public, help="per minute")
    parser.add_argument("--user-limit", type=int, default=defaults.user, help="per minute")
    parser.add_argument("--login-limit", type=int, default=defaults.login, help="per minute")
    parser.add_argument("--xff-num-trusted-hops", type=int, default=0)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument(
        "--usage-collector",
        type=_address,
        metavar="HOST:PORT",
        help="stream every request's access-log entry to this usage collector (gRPC)",
    )
    parser.add_argument(
        "--rate-limit-service",
        type=_address,
        metavar="HOST:PORT",
        help="enforce the per-client limits with this envoyproxy/ratelimit service (gRPC), "
        "shared by every Envoy replica, instead of local buckets",
    )
    parser.add_argument(
        "--stats-port",
        type=int,
        help="also serve the admin's /stats/prometheus and /ready (only) on this port",
    )
    parser.add_argument(
        "--ratelimit-config",
        action="store_true",
        help="print the rate limit service's config for the limits given, not Envoy's",
    )
    args = parser.parse_args(argv)

    try:
        limits = RateLimits(public=args.public_limit, user=args.user_limit, login=args.login_limit)
    except ValueError as exc:
        parser.error(str(exc))
    if args.ratelimit_config:
        text = render_ratelimit_config(limits)
    elif args.listen_port is None or args.admin_port is None:
        parser.error("the following arguments are required: --listen-port, --admin-port")
    else:
        text = _render_from_args(parser, args, limits)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


def _render_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, limits: RateLimits
) -> str:
    try:
        return render_config(
            listen_host=args.listen_host,
            listen_port=args.listen_port,
            admin_port=args.admin_port,
            upstreams=dict(args.upstream),
            limits=limits,
            xff_num_trusted_hops=args.xff_num_trusted_hops,
            access_log=not args.no_access_log,
            usage_collector=args.usage_collector,
            rate_limit_service=args.rate_limit_service,
            stats_port=args.stats_port,
        )
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
