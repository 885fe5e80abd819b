"""Gunicorn settings shared by every service api (`--config python:bugnet_common.gunicorn_conf`)."""

import os

workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Envoy pools upstream connections; a keep-alive shorter than Envoy's idle timeout would let
# gunicorn close a connection Envoy is about to reuse.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
timeout = 30
graceful_timeout = 10
accesslog = None  # the gateway's access log is the one record of requests
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "warning")
