"""Gunicorn settings shared by every service api (`--config python:bugnet_common.gunicorn_conf`)."""

import os

workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Envoy pools upstream connections and closes them after 20 s idle
# (bugnet_gateway.render.UPSTREAM_IDLE_TIMEOUT_S); a shorter keep-alive here would let gunicorn
# close a connection Envoy is about to reuse.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
timeout = 30
graceful_timeout = 10
accesslog = None  # the gateway's access log is the one record of requests
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "warning")
# Envoy caps a request's line and headers (60 KiB and 100 headers, answered with the
# envelope); gunicorn's smaller caps (4094-byte request line, 8190-byte header) answered with
# an HTML page instead, for requests Envoy had let through (issue 7: a long query string was a
# 414 or 431 in text/html). The apis listen on loopback behind Envoy, so its caps are the ones
# that apply; these only have to be above them (0 = unlimited for the request line).
limit_request_line = 0
limit_request_field_size = 64 * 1024
limit_request_fields = 200  # Envoy's 100 plus the headers Envoy adds
