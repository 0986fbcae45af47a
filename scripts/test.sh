#!/usr/bin/env bash
# The README's test command. Idempotent: prepares everything the tests need
# (project-local tools only, never system-wide), then runs format, lint and
# every test. Exits non-zero on any failure.
#
#   DATABASE_URL   PostgreSQL admin URL for the tests
#                  (default postgres://postgres@127.0.0.1:5432/postgres)
#   CI=true        tests that need PostgreSQL or an emulator fail, not skip
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Python tools used by tests (added by later capabilities) live in .venv.
if [ -f tests/requirements.txt ]; then
  step "Python test tools into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

# Node tools used by tests live in their own project folders (npm ci).
for lock in $(find tests idp -name package-lock.json -not -path '*/node_modules/*' 2>/dev/null); do
  dir=$(dirname "$lock")
  step "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

step "PostgreSQL at ${DATABASE_URL%%\?*}"
pg_ready() { command -v pg_isready >/dev/null && pg_isready -q -d "$DATABASE_URL"; }
if ! pg_ready && command -v pg_ctlcluster >/dev/null; then
  # The machines of this project run PostgreSQL as a local service; start it
  # if it stopped rather than letting every storage test fail.
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  sleep 1
fi
if pg_ready; then
  echo "reachable"
elif [ "${CI:-}" = "true" ]; then
  echo "unreachable: PostgreSQL tests will fail (CI=true)"
else
  echo "unreachable: PostgreSQL tests will skip with a printed reason"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "checkov over terraform/ (scripts/checkov.sh)"
bash scripts/checkov.sh

step "no import cycle between the broker's feature modules"
python3 scripts/module-graph.py >/dev/null || { python3 scripts/module-graph.py | grep '^cycle'; exit 1; }
echo "ok"

step "test-only features stay out of the keyferry binary"
# `idp/test-support` lets tests mint credentials that no subject token backs;
# only dev-dependencies may enable it (Cargo keeps their features out of
# normal builds). Fail if a normal dependency ever turns it on.
if cargo tree -p keyferry -e normal -f '{p} [{f}]' --prefix none | grep -E '^idp .*test-support'; then
  echo "idp/test-support is enabled in the keyferry binary's dependencies" >&2
  exit 1
fi
echo "ok"

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast
fi

step "hostile requests over every OpenAPI route (scripts/api-fuzz.sh)"
bash scripts/api-fuzz.sh

step "fuzz smoke: every target for 30 s (scripts/fuzz.sh)"
bash scripts/fuzz.sh 30
