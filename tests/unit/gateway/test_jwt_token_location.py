"""Bearer tokens are read from the Authorization header only (issue 7).

Envoy's jwt_authn, given no explicit location, also takes `?access_token=` from the query
string; a token in a URL lands in access logs, proxies and browser history. The rendered
provider must name the header and nothing else (the e2e check is in
tests/security/test_auth_abuse.py).
"""

from __future__ import annotations

from typing import Any

from bugnet_gateway.render import JWT_AUTHN, RateLimits, build_bootstrap

UPSTREAMS = {"auth": ("127.0.0.1", 8101), "bugs": ("127.0.0.1", 8102)}


def _providers() -> dict[str, Any]:
    config = build_bootstrap(listen_port=8080, admin_port=9901, upstreams=UPSTREAMS,
                             limits=RateLimits())
    listener = config["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (jwt,) = [f["typed_config"] for f in hcm["http_filters"] if f["name"] == JWT_AUTHN]
    providers: dict[str, Any] = jwt["providers"]
    return providers


def test_every_provider_reads_the_token_from_the_authorization_header_only() -> None:
    providers = _providers()
    assert providers
    for name, provider in providers.items():
        assert provider["from_headers"] == [{"name": "Authorization",
                                             "value_prefix": "Bearer "}], name
        # An empty or missing from_headers would bring back Envoy's defaults (query included).
        for other in ("from_params", "from_cookies"):
            assert not provider.get(other), f"{name} also reads {other}"
