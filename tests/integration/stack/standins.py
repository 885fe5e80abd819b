"""Trivial stand-ins for the services and the gateway renderer, written into a temp dir.

They exercise the launcher's contract (commands, environment, health endpoints, one-shot
migrations) without depending on the real services. Knobs, read from the environment:
STANDIN_FAIL_MIGRATION=<svc> makes that service's migration exit 3;
STANDIN_NEVER_READY=<svc> keeps that service's /readyz at 503.
"""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

SERVICES = ("auth", "bugs", "analytics", "integrations")

APP = """
import json
import os

import psycopg

SVC = "{svc}"
PREFIX = SVC.upper() + "_"


def create_app():
    dsn = os.environ[PREFIX + "DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/healthz":
            return send(start_response, 200, {{"status": "ok"}})
        if path == "/readyz":
            if os.environ.get("STANDIN_NEVER_READY") == SVC:
                return send(start_response, 503, {{"status": "never"}})
            try:
                with psycopg.connect(dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT count(*) FROM standin_migrated").fetchone()
            except psycopg.Error as exc:
                return send(start_response, 503, {{"status": str(exc)}})
            return send(start_response, 200, {{"status": "ready"}})
        if path == "/api/health":
            env = {{k: v for k, v in os.environ.items() if k.startswith(PREFIX)}}
            return send(start_response, 200, {{"service": SVC, "env": env}})
        return send(start_response, 404, {{"error": path}})

    return app


def send(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(f"{{status}} X", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
"""

MIGRATE = """
import os
import sys

import psycopg

SVC = "{svc}"
if os.environ.get("STANDIN_FAIL_MIGRATION") == SVC:
    print(f"{{SVC}} stand-in migration fails on purpose", flush=True)
    sys.exit(3)
dsn = os.environ[SVC.upper() + "_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
with psycopg.connect(dsn) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS standin_migrated (id int)")
print("migrated", flush=True)
"""

WORKER = """
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if self.path in ("/healthz", "/metrics") else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = HTTPServer((os.environ["WORKER_METRICS_HOST"], int(os.environ["WORKER_METRICS_PORT"])),
                    Health)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("{svc} stand-in worker running", flush=True)
threading.Event().wait()
"""

GUNICORN_CONF = """
workers = 1
"""

RENDER = '''
"""Stand-in for bugnet_gateway.render: routes /api/health to auth, /api/<svc>/ to <svc>."""

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class RateLimits:
    public: int = 30
    user: int = 120
    login: int = 10


def render_config(*, listen_host="127.0.0.1", listen_port, admin_port, upstreams, limits,
                  xff_num_trusted_hops=0, access_log=True):
    routes = [{"match": {"prefix": "/api/health"}, "route": {"cluster": "auth"}}]
    routes += [{"match": {"prefix": f"/api/{name}/"}, "route": {"cluster": name}} for name in upstreams]
    config = {
        "admin": {"address": {"socket_address": {"address": listen_host, "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": listen_host, "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
                        "http_filters": [{
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                        }],
                    },
                }]}],
            }],
            "clusters": [
                {
                    "name": name,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
                    ]}]},
                }
                for name, (host, port) in upstreams.items()
            ],
        },
    }
    header = f"# limits public={limits.public} user={limits.user} login={limits.login}\\n"
    return header + yaml.safe_dump(config, sort_keys=False)
'''


def write(root: Path) -> Path:
    """Writes the stand-in packages under root (to be put on PYTHONPATH); returns root."""
    for svc in SERVICES:
        package = root / svc
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "app.py").write_text(textwrap.dedent(APP.format(svc=svc)))
        (package / "migrate.py").write_text(textwrap.dedent(MIGRATE.format(svc=svc)))
        (package / "worker.py").write_text(textwrap.dedent(WORKER.format(svc=svc)))
    common = root / "bugnet_common"
    common.mkdir()
    (common / "__init__.py").write_text("")
    (common / "gunicorn_conf.py").write_text(GUNICORN_CONF)
    gateway = root / "bugnet_gateway"
    gateway.mkdir()
    (gateway / "__init__.py").write_text("")
    (gateway / "render.py").write_text(RENDER)
    return root


def load_render(root: Path) -> ModuleType:
    """The stand-in bugnet_gateway.render module, loaded from root without touching sys.path."""
    spec = importlib.util.spec_from_file_location(
        "standin_gateway_render", root / "bugnet_gateway" / "render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def renderer(root: Path) -> Callable[..., str]:
    render: Callable[..., str] = load_render(root).render_config
    return render
