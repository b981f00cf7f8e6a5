#!/usr/bin/env bash
# The README's test command: formatting, lints, every test of the workspace,
# then the crash tests and the demo on release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace
echo "== scripts/crash-test.sh (release build, kill -9 under load)"
scripts/crash-test.sh 6
echo "== scripts/settlement-crash-test.sh (settlement kill -9 mid-run, audit)"
scripts/settlement-crash-test.sh 8
echo "== scripts/demo.sh (the README's main command)"
TONNEX_DEMO_SECONDS=5 TONNEX_DEMO_OPS=100000 scripts/demo.sh
