"""The OpenAPI 3.1 document of the whole public API, and its human page, built from the code.

Sources, each stated once elsewhere:
- the services' Flask routes under ``/api`` and the :class:`bugnet_common.openapi.Operation`
  each view declares (summary, body/query models, response type, status);
- the pydantic models and TypedDicts those declarations name (JSON Schema by pydantic);
- the gateway's route table (``routes.FAMILIES``): who may call a path (bearer / optional /
  none), its rate-limit class and body cap.

``python -m bugnet_gateway.openapi --write`` regenerates ``static/openapi.json`` and
``static/docs.html``, which Envoy serves at ``/api/openapi.json`` and ``/api/docs``;
``--check`` fails when they are stale (the test suite runs the same comparison).

The gateway imports the services only here, to build the documents; serving them needs
nothing but the files.
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask
from pydantic import TypeAdapter

from bugnet_common.openapi import (
    PAGE_META_SCHEMA,
    Operation,
    envelope_schema,
    operations_of,
)
from bugnet_gateway.render import STATIC_DIR
from bugnet_gateway.routes import BODY_CAP_BYTES, FAMILIES, RouteFamily, Service, resolve

TITLE = "Bugnet API"
API_VERSION = "1.0.0"
DOC_FILE = "openapi.json"
PAGE_FILE = "docs.html"
REF = "#/components/schemas/{model}"

DESCRIPTION = """\
The Bugnet REST API: game clients (the engine SDKs) send bug reports, crash reports, play
sessions and performance snapshots with a project API key; studio teams triage with bearer
tokens; players vote on a public tracker.

Every path is served under both `/api/...` and `/api/v1/...`. Every response body is an
envelope: `{"ok": true, "data": ...}` (lists add `meta` with `page`, `limit`, `total`,
`pages`), or `{"ok": false, "error": "...", "code": "...", "details": {...}}` on errors,
including the gateway's own (unknown route, 401, 413, 429, 503). Rate limits are per client IP
and reported in `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` and, on a
429, `Retry-After`.
"""


def _service_blueprints() -> dict[Service, Callable[[], Iterable[Blueprint]]]:
    def auth() -> Iterable[Blueprint]:
        return [importlib.import_module("auth.routes").bp]

    def bugs() -> Iterable[Blueprint]:
        return importlib.import_module("bugs.app").BLUEPRINTS  # type: ignore[no-any-return]

    def analytics() -> Iterable[Blueprint]:
        return importlib.import_module("analytics.app").blueprints()  # type: ignore[no-any-return]

    def integrations() -> Iterable[Blueprint]:
        return importlib.import_module("integrations.app").BLUEPRINTS  # type: ignore[no-any-return]

    return {"auth": auth, "bugs": bugs, "analytics": analytics, "integrations": integrations}


@dataclass(frozen=True)
class Route:
    """One (method, path) a service serves under /api, with the operation it declares."""

    service: Service
    method: str
    rule: str  # Flask form: /api/projects/<slug>
    path: str  # OpenAPI form: /api/projects/{slug}
    params: tuple[str, ...]
    endpoint: str
    multi_method: bool
    operation: Operation | None

    @property
    def sample_path(self) -> str:
        """A concrete path for the route table ("{slug}" becomes a valid slug)."""
        return re.sub(r"\{[^}]+\}", "sample-1", self.path)

    @property
    def family(self) -> RouteFamily | None:
        return resolve(self.method, self.sample_path)


_RULE_PARAM = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")


def service_routes() -> list[Route]:
    """Every (method, rule) each service's api serves under /api, in a stable order."""
    found: list[Route] = []
    for service, blueprints in _service_blueprints().items():
        app = Flask(f"openapi-{service}")
        # Blueprints' registration hooks read the settings (defaults; nothing is connected).
        settings_cls = getattr(importlib.import_module(f"{service}.settings"),
                               f"{service.capitalize()}Settings")
        app.extensions["bugnet.settings"] = settings_cls()
        for bp in blueprints():
            app.register_blueprint(bp)
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/api/"):
                continue
            view = app.view_functions[rule.endpoint]
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            ops = operations_of(view)
            for method in methods:
                op = next((o for o in ops if o.covers(method)), None)
                found.append(Route(
                    service=service, method=method, rule=rule.rule,
                    path=_RULE_PARAM.sub(r"{\1}", rule.rule),
                    params=tuple(_RULE_PARAM.findall(rule.rule)),
                    endpoint=f"{service}.{rule.endpoint}", multi_method=len(methods) > 1,
                    operation=op))
    return sorted(found, key=lambda r: (r.path, r.method))


# --- the document --------------------------------------------------------------------------

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Invalid input: the message names the field; `details` maps fields to messages."),
    401: ("Unauthorized", "Missing, invalid, expired or revoked token or API key."),
    403: ("Forbidden", "Authenticated, but without the permission this needs."),
    404: ("NotFound", "No such resource, or one the caller cannot see (existence is never leaked)."),
    410: ("Gone", "It existed but is no longer available (an expired or used invitation)."),
    409: ("Conflict", "Conflicts with the current state (e.g. a slug or email already taken)."),
    413: ("PayloadTooLarge", "The body exceeds the route's limit."),
    415: ("UnsupportedMediaType", "The body is not in a content type this route accepts."),
    429: ("RateLimited", "Too many requests from this client; retry after `Retry-After` seconds."),
    502: ("BadGateway", "An external service the request calls (GitHub, GitLab, Steam...) "
                        "failed or did not answer."),
    503: ("ServiceUnavailable", "A dependency is down; retry later."),
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["ok", "error"],
    "properties": {
        "ok": {"const": False},
        "error": {"type": "string", "description": "A human-readable message."},
        "code": {"type": "string", "description": "A stable machine code, e.g. `not_found`."},
        "details": {"type": "object",
                    "description": "Per-field messages of a 400, or what the error is about "
                                   "(e.g. the ids that were not found)."},
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "An access token from `POST /api/auth/login`."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "The project's API key (SDK endpoints). SDKs may also send it "
                              "as `api_key` in the body."},
}


class DocumentError(Exception):
    """The code's declarations cannot make a correct document (a route without one...)."""


def _operation_id(route: Route) -> str:
    base = route.endpoint.replace(".", "_")
    return f"{base}_{route.method.lower()}" if route.multi_method else base


def _security(route: Route, op: Operation) -> list[dict[str, list[str]]]:
    if op.auth == "api_key":
        return [{"apiKey": []}]
    family = route.family
    if family is None or family.auth == "none":
        return []
    if family.auth == "optional":
        return [{}, {"bearerAuth": []}]
    return [{"bearerAuth": []}]


def _error_statuses(route: Route, op: Operation) -> list[int]:
    codes = {429, 503, *op.errors}
    family = route.family
    if op.body or op.form or op.query or route.params or op.paginated:
        codes.add(400)
    if op.auth == "api_key" or (family is not None and family.auth != "none"):
        codes.add(401)
    if family is not None and family.auth == "bearer" and route.params:
        codes.update((403, 404))
    if route.params:
        codes.add(404)
    if op.body or op.form:
        codes.update((413, 415))
    return sorted(codes)


def _parameters(route: Route, op: Operation, query_schema: dict[str, Any] | None,
                ) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.params
    ]
    if op.paginated:
        params += [
            {"name": "page", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "default": 1}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
        ]
    if query_schema is not None:
        required = set(query_schema.get("required", ()))
        for name, schema in query_schema.get("properties", {}).items():
            if op.paginated and name in ("page", "limit"):
                continue
            entry: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": {k: v for k, v in schema.items() if k != "title"}}
            if "description" in schema:
                entry["description"] = schema["description"]
            if schema.get("type") == "array":
                entry["explode"] = True
            params.append(entry)
    return params


def build_document(routes: list[Route] | None = None) -> dict[str, Any]:
    routes = service_routes() if routes is None else routes
    missing = [f"{r.method} {r.rule} ({r.endpoint})" for r in routes if r.operation is None]
    if missing:
        raise DocumentError("routes without an openapi.operation declaration: "
                            + "; ".join(missing))

    # One pass over every type, so shared models become one component each and name clashes
    # between services are resolved by pydantic.
    inputs: list[tuple[tuple[str, str], Any, TypeAdapter[Any]]] = []
    for i, route in enumerate(routes):
        op = route.operation
        assert op is not None
        if op.response is not None:
            inputs.append(((str(i), "response"), "serialization", TypeAdapter(op.response)))
        if op.meta is not None:
            inputs.append(((str(i), "meta"), "serialization", TypeAdapter(op.meta)))
        for kind in ("body", "form", "query"):
            model = getattr(op, kind)
            if model is not None:
                inputs.append(((str(i), kind), "validation", TypeAdapter(model)))
    keyed, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    schemas = {key: schema for (key, _mode), schema in keyed.items()}  # keys come with the mode
    components: dict[str, Any] = dict(sorted(defs.get("$defs", {}).items()))

    def inline_query(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return components[ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
        return schema

    paths: dict[str, dict[str, Any]] = {}
    for i, route in enumerate(routes):
        op = route.operation
        assert op is not None
        key = str(i)
        if op.response is None:
            data: dict[str, Any] = {"type": "object", "properties": {}}
        else:
            data = schemas[(key, "response")]
        if op.paginated:
            data = {"type": "array", "items": data}
        success = envelope_schema(data, paginated=op.paginated,
                                  meta_ref="#/components/schemas/PageMeta",
                                  meta_schema=schemas.get((key, "meta"))) if op.envelope else data
        query_schema = inline_query(schemas[(key, "query")]) if op.query else None
        entry: dict[str, Any] = {
            "operationId": _operation_id(route),
            "summary": op.summary,
            "tags": [op.tag],
        }
        if op.description:
            entry["description"] = op.description
        params = _parameters(route, op, query_schema)
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": not op.body_optional,
                "content": {"application/json": {"schema": schemas[(key, "body")]}},
            }
        elif op.form is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": schemas[(key, "form")]}},
            }
        if op.media_type != "application/json":
            success = {"type": "string", "contentMediaType": op.media_type}
        responses: dict[str, Any] = {
            str(status): {
                "description": "Created" if status == 201 else "OK",
                "content": {op.media_type: {"schema": success}},
            } for status in sorted({op.status, *op.alt_statuses})
        }
        if not op.envelope:
            entry["x-bugnet-envelope"] = False
        for status in _error_statuses(route, op):
            responses[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
        entry["responses"] = responses
        entry["security"] = _security(route, op)
        family = route.family
        if family is not None:
            entry["x-bugnet-rate-class"] = family.rate_class
            entry["x-bugnet-body-limit-bytes"] = BODY_CAP_BYTES[family.body_cap]
        paths.setdefault(route.path, {})[route.method.lower()] = entry

    _add_gateway_documents(paths)
    components["Error"] = ERROR_SCHEMA
    components["PageMeta"] = PAGE_META_SCHEMA
    tags = sorted({op["tags"][0] for ops in paths.values() for op in ops.values()})
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": API_VERSION, "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "servers": [{"url": "/", "description": "this Bugnet gateway"}],
        "tags": [{"name": t} for t in tags],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "responses": {
                name: {"description": text,
                       "content": {"application/json": {
                           "schema": {"$ref": "#/components/schemas/Error"}}}}
                for name, text in _ERRORS.values()
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _add_gateway_documents(paths: dict[str, dict[str, Any]]) -> None:
    for family in FAMILIES:
        if family.static is None:
            continue
        path = "/api/" + family.pattern.replace("\\", "").replace("/?", "")
        media = "application/json" if family.static.endswith(".json") else "text/html"
        schema: dict[str, Any] = {"type": "object"} if media == "application/json" else {
            "type": "string"}
        paths[path] = {"get": {
            "operationId": f"gateway_{family.name.split('.', 1)[1]}",
            "summary": ("This OpenAPI document" if media == "application/json"
                        else "This API's reference page"),
            "tags": ["Documentation"],
            "description": "Served by the gateway itself; not in the envelope.",
            "responses": {"200": {"description": "OK", "content": {media: {"schema": schema}}}},
            "security": [],
        }}


# --- the human page -----------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;display:flex}
nav{width:270px;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6fa;
padding:16px;box-sizing:border-box;font-size:13px;flex:none}
nav a{display:block;color:#334;text-decoration:none;padding:1px 0}
nav h3{margin:14px 0 4px;font-size:12px;text-transform:uppercase;color:#667}
main{padding:24px 40px;max-width:980px}
.op{border:1px solid #dde2ea;border-radius:6px;margin:18px 0;padding:12px 16px}
.m{display:inline-block;min-width:58px;font:bold 12px monospace;padding:2px 6px;
border-radius:3px;color:#fff;text-align:center}
.get{background:#2f7bd8}.post{background:#2a9d5c}.patch,.put{background:#c98a10}
.delete{background:#c43d3d}
code,.path{font-family:ui-monospace,monospace}.path{font-weight:600}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
td,th{border-bottom:1px solid #e6e9ef;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
.muted{color:#667;font-size:13px}
"""


def _type_text(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_type_text(s) for s in schema["anyOf"])
    if "const" in schema:
        return f"<code>{html.escape(json.dumps(schema['const']))}</code>"
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{html.escape(json.dumps(v))}</code>"
                                     for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_text(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type_text(schema['additionalProperties'])}"
    text = html.escape(str(kind))
    if "format" in schema:
        text += f" ({html.escape(schema['format'])})"
    return text


def _limits_text(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (("minLength", "min length"), ("maxLength", "max length"),
                       ("minimum", "min"), ("maximum", "max"), ("default", "default")):
        if key in schema:
            parts.append(f"{label} {html.escape(json.dumps(schema[key]))}")
    if "description" in schema:
        parts.append(html.escape(schema["description"]))
    return "; ".join(parts)


def _fields_table(schema: dict[str, Any]) -> str:
    props = schema.get("properties")
    if not props:
        return f"<p>{_type_text(schema)}</p>"
    required = set(schema.get("required", ()))
    rows = "".join(
        f"<tr><td><code>{html.escape(name)}</code>{'' if name in required else ' <span class=muted>optional</span>'}"
        f"</td><td>{_type_text(sub)}</td><td class=muted>{_limits_text(sub)}</td></tr>"
        for name, sub in props.items())
    return f"<table>{rows}</table>"


def render_page(doc: dict[str, Any]) -> str:
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            by_tag.setdefault(op["tags"][0], []).append((method, path, op))
    nav, body = [], []
    for tag in sorted(by_tag):
        nav.append(f"<h3>{html.escape(tag)}</h3>")
        body.append(f'<h2 id="tag-{html.escape(tag)}">{html.escape(tag)}</h2>')
        for method, path, op in by_tag[tag]:
            anchor = html.escape(op["operationId"])
            nav.append(f'<a href="#{anchor}">{html.escape(op["summary"])}</a>')
            parts = [f'<div class=op id="{anchor}"><span class="m {method}">{method.upper()}'
                     f'</span> <span class=path>{html.escape(path)}</span>'
                     f'<p>{html.escape(op["summary"])}</p>']
            if op.get("description"):
                parts.append(f'<p class=muted>{html.escape(op["description"])}</p>')
            security = op.get("security", [])
            auth = ("none" if not security else " or ".join(
                next(iter(s), "anonymous") for s in security))
            extra = ""
            if "x-bugnet-rate-class" in op:
                extra = f" · rate class <code>{op['x-bugnet-rate-class']}</code>"
            parts.append(f"<p class=muted>auth: <code>{html.escape(auth)}</code>{extra}</p>")
            if op.get("parameters"):
                rows = "".join(
                    f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                    f"<td>{_type_text(p['schema'])}</td><td class=muted>"
                    f"{'required' if p.get('required') else ''} {_limits_text(p['schema'])}"
                    f"</td></tr>" for p in op["parameters"])
                parts.append(f"<h4>Parameters</h4><table>{rows}</table>")
            if "requestBody" in op:
                media, content = next(iter(op["requestBody"]["content"].items()))
                parts.append(f"<h4>Body <span class=muted>{media}</span></h4>"
                             + _fields_table(_resolve(doc, content["schema"])))
            for status, resp in op["responses"].items():
                if "$ref" in resp:
                    continue
                schema = resp["content"].get("application/json", {}).get("schema")
                if schema is None:
                    continue
                data = schema.get("properties", {}).get("data", schema)  # or not enveloped
                parts.append(f"<h4>{status} <span class=muted>data</span></h4>"
                             + _fields_table(_resolve(doc, data)))
            errors = [s for s, r in op["responses"].items() if "$ref" in r]
            if errors:
                parts.append(f"<p class=muted>errors: {', '.join(errors)}</p>")
            parts.append("</div>")
            body.append("".join(parts))
    nav.append('<h3>Schemas</h3>')
    body.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        nav.append(f'<a href="#schema-{html.escape(name)}">{html.escape(name)}</a>')
        body.append(f'<div class=op id="schema-{html.escape(name)}"><span class=path>'
                    f'{html.escape(name)}</span>{_fields_table(schema)}</div>')
    intro = "".join(f"<p>{html.escape(p)}</p>" for p in doc["info"]["description"].split("\n\n"))
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(doc['info']['title'])}</title><style>{_CSS}</style></head>"
            f"<body><nav><b>{html.escape(doc['info']['title'])}</b> "
            f"<span class=muted>{html.escape(doc['info']['version'])}</span>"
            f"<a href='openapi.json'>openapi.json</a>{''.join(nav)}</nav><main>"
            f"<h1>{html.escape(doc['info']['title'])}</h1>{intro}{''.join(body)}</main>"
            "</body></html>\n")


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return schema


# --- files ---------------------------------------------------------------------------------

def rendered_files() -> dict[str, str]:
    doc = build_document()
    return {DOC_FILE: json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
            PAGE_FILE: render_page(doc)}


def stale_files(directory: Path = STATIC_DIR) -> list[str]:
    stale = []
    for name, text in rendered_files().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bugnet_gateway.openapi",
                                     description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the served files")
    mode.add_argument("--check", action="store_true", help="exit 1 when they are stale")
    mode.add_argument("--print", action="store_true", help="print the document")
    args = parser.parse_args(argv)
    try:
        files = rendered_files()
    except DocumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print:
        sys.stdout.write(files[DOC_FILE])
        return 0
    if args.check:
        stale = stale_files()
        if stale:
            print(f"stale: {', '.join(stale)}; run `make openapi`", file=sys.stderr)
            return 1
        return 0
    STATIC_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (STATIC_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {STATIC_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
