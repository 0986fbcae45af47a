#!/usr/bin/env bash
# Hostile input over every route of docs/openapi.yaml against a live dev
# broker: schemathesis (from .venv) generates schema-driven and malformed
# requests, with the bootstrap admin token so the admin routes are reached.
# Every check runs (no 5xx, every status and response body as documented,
# schema-violating requests refused, missing auth answered 401) except
# positive_data_acceptance: a schema cannot say that a use case, issuer,
# member or cloud must exist on this broker, or that start <= end, so a
# schema-valid request may rightly get 400 (docs/openapi.yaml says which).
# Then scripts/bad-input.py sends its raw-socket corpus over the same routes.
# Passes when no request gets a 5xx, the broker is still healthy after, its
# log has no panic, and its resident memory stayed bounded.
#   EXAMPLES  generated cases per route and phase (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${EXAMPLES:-20}"
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/keyferry"
cargo build --quiet -p keyferry
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
token=$(cat "$work/data/admin-token")
.venv/bin/st --config-file scripts/schemathesis.toml run docs/openapi.yaml --url "http://127.0.0.1:$port" \
  --checks all --exclude-checks positive_data_acceptance --max-examples "$examples" --seed 20261207 \
  -H "Authorization: Bearer $token" --no-color >"$work/st.log" 2>&1 || {
  tail -n 80 "$work/st.log"
  echo "schemathesis found a server error (log above)" >&2
  exit 1
}
grep -E "generated, " "$work/st.log" || true
# Then what schemathesis cannot send: invalid UTF-8, deep JSON, header
# floods, broken request lines (raw sockets).
.venv/bin/python scripts/bad-input.py "http://127.0.0.1:$port" "$token" docs/openapi.yaml
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the broker is down after the run" >&2; exit 1; }
if grep -q "panicked" "$work/serve.log"; then
  grep "panicked" "$work/serve.log" | head -5
  echo "the broker panicked" >&2
  exit 1
fi
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "broker RSS after the run: $((rss_kb / 1024)) MiB"
if [ "$rss_kb" -gt $((512 * 1024)) ]; then
  echo "the broker grew past 512 MiB" >&2
  exit 1
fi
