#!/usr/bin/env bash
# Start MLflow's tracking server on the Ray head (cluster.yaml runs this after `ray start`).
# It listens on the head's private address only (not 0.0.0.0: never on the internet) and
# accepts only that Host header; its store is a sqlite file on the head's own disk (one writer,
# not a file on the shared mount that every node's uploader would lock); artifacts go to the
# shared mount. The URI is written to $STORE/env for the shell that runs `xscale sweep`
# (XSCALE_TRACKING_URI, the default when neither the sweep file nor --tracking-uri names one).
#   XSCALE_MLFLOW_HOST  address to bind (default: the first of `hostname -I`, the private one)
#   XSCALE_MLFLOW_PORT  port (default 5000)
#   XSCALE_MLFLOW_STORE folder of the sqlite store, its log and env file (default ~/mlflow)
#   XSCALE_MLFLOW_ARTIFACTS  artifact folder (default /shared/xscale/mlartifacts)
set -euo pipefail
HOST=${XSCALE_MLFLOW_HOST:-$(hostname -I | awk '{print $1}')}
PORT=${XSCALE_MLFLOW_PORT:-5000}
STORE=${XSCALE_MLFLOW_STORE:-$HOME/mlflow}
ARTIFACTS=${XSCALE_MLFLOW_ARTIFACTS:-/shared/xscale/mlartifacts}
MLFLOW=${MLFLOW:-$(dirname "$0")/../.venv/bin/mlflow}
if [ -z "$HOST" ] || [ "$HOST" = "0.0.0.0" ]; then
  echo "cluster_mlflow: no private address to bind (set XSCALE_MLFLOW_HOST)" >&2
  exit 2
fi
mkdir -p "$STORE" "$ARTIFACTS"
if [ -f "$STORE/server.pid" ]; then  # a server of an earlier `ray up`: stop it first
  kill "$(cat "$STORE/server.pid")" 2>/dev/null || true
  sleep 5
fi
nohup "$MLFLOW" server --host "$HOST" --port "$PORT" \
  --backend-store-uri "sqlite:///$STORE/mlflow.db" \
  --artifacts-destination "$ARTIFACTS" \
  --allowed-hosts "$HOST:$PORT,$HOST" \
  > "$STORE/server.log" 2>&1 < /dev/null &
pid=$!
echo "$pid" > "$STORE/server.pid"
for _ in $(seq 120); do  # a bound: the server answers in 10-15 s
  if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
    echo "export XSCALE_TRACKING_URI=http://$HOST:$PORT" > "$STORE/env"
    echo "cluster_mlflow: MLflow on http://$HOST:$PORT (pid $pid, log $STORE/server.log)"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
echo "cluster_mlflow: the server did not start; see $STORE/server.log" >&2
exit 1
