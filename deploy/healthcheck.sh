#!/bin/sh
# healthcheck SERVICE: the container HEALTHCHECK of every hubcache image (deploy/Dockerfile).
#
# Liveness, not readiness: a container is healthy while its process serves. Readiness (all cached
# data loaded) is the gateway's /healthcheck, which the load balancer and Kubernetes use instead.
#   gateway      GET /livez on PORT (default 3000)
#   fetcher      GET /livez on METRICS_PORT (default 9100), its admin listener
#   views        GET /livez on METRICS_PORT (default 9101); with METRICS_PORT=0 there is no
#                listener, and a running PID 1 is the best sign of life there is
#   github-sim   GET /_sim/stats on SIM_PORT (default 3001)
set -eu

probe() {
  exec curl --fail --silent --show-error --max-time 3 --output /dev/null "http://127.0.0.1:$1$2"
}

case "${1:?usage: healthcheck gateway|fetcher|views|github-sim}" in
  gateway) probe "${PORT:-3000}" /livez ;;
  github-sim) probe "${SIM_PORT:-3001}" /_sim/stats ;;
  fetcher | views)
    if [ "$1" = fetcher ]; then default_port=9100; else default_port=9101; fi
    port="${METRICS_PORT:-$default_port}"
    if [ "$port" != 0 ]; then
      probe "$port" /livez
    fi
    # PID 1 is the service itself (exec form ENTRYPOINT): signal 0 checks it is alive (the shell's
    # builtin kill; the slim image has no kill binary).
    kill -0 1
    ;;
  *) echo "healthcheck: unknown service '$1'" >&2; exit 2 ;;
esac
