#!/usr/bin/env bash
# Runs every fuzz target (cargo fuzz: libFuzzer with AddressSanitizer) for
# SECONDS each (default 30): the smoke run of scripts/test.sh, or a longer
# run by hand (`scripts/fuzz.sh 3600`). A crash fails the run; its input is
# kept under fuzz/artifacts/<target>/ and becomes a regression seed in
# fuzz/seeds/<target>/ once fixed. cargo-fuzz needs nightly features, which
# the stable toolchain enables with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
tools="$PWD/.tools"
if ! [ -x "$tools/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --locked --quiet --root "$tools"
fi
export RUSTC_BOOTSTRAP=1
# Sanitizer builds live beside the workspace's cache (a build cache only).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/fuzz-seeds.py "$work/snp_evidence-vectors"
for target in subject_token credential snp_evidence kek_uri admin_bodies config audit_export; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  cp fuzz/seeds/"$target"/* "$corpus"/
  if [ "$target" = snp_evidence ]; then cp "$work"/snp_evidence-vectors/* "$corpus"/ 2>/dev/null || true; fi
  echo "fuzz $target for ${seconds}s"
  log="$work/$target.log"
  if ! (cd fuzz && "$tools/bin/cargo-fuzz" run --release "$target" "$corpus" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1) >"$log" 2>&1; then
    # The panic message comes before libFuzzer's report, which can be long.
    grep -m 5 -A 4 "panicked at" "$log" || true
    tail -n 60 "$log"
    echo "fuzz target $target failed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" | tr '\n' ' '
  echo
done
