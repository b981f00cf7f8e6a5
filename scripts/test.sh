#!/usr/bin/env bash
# The README's test command: formatting, lints, every test of the workspace,
# then the crash tests, the demo, the browser tests of tonnex-web and its
# pages against a million-trade ledger, on release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's header says how long the run has taken so far (CI's budget is
# 25 minutes): `== [mm:ss] step`.
step() { printf '== [%02d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
# The metrics test parses scrapes with the reference Prometheus parser.
if ! python3 -c "import prometheus_client" 2>/dev/null; then
    echo "== installing prometheus_client (Python) for the metrics test"
    python3 -m pip install --quiet prometheus_client 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages prometheus_client 2>/dev/null \
        || { command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] && apt-get install -y -q python3-prometheus-client \
             || sudo apt-get install -y -q python3-prometheus-client; }; }
    python3 -c "import prometheus_client" || { echo "cannot install prometheus_client" >&2; exit 1; }
fi
# The browser tests drive a real headless Chromium with Selenium.
scripts/setup-browser.sh
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test --workspace"
cargo test --workspace
step "scripts/crash-test.sh (release build, kill -9 under load)"
scripts/crash-test.sh 6
step "cluster simulation, 2,000 seeds (release build)"
TONNEX_SIM_SEEDS=2000 cargo test --release -p tonnex-cluster --test sim
cargo build --release --quiet --bin tonnex-venue --bin tonnex-loadtest --bin tonnex-replay --bin tonnex-admin
step "scripts/cluster_test.py (three venue nodes: the leader killed with SIGKILL under a 20,000 msgs/s load test, once, then 20 times)"
python3 scripts/cluster_test.py target/release --kills 1
python3 scripts/cluster_test.py target/release --kills 20
step "scripts/cluster_test.py --operations (cluster status, leadership transfer, a node added and a voter removed)"
python3 scripts/cluster_test.py target/release --operations
step "scripts/cluster_test.py --nodes 5 --kills 3, --minority, --behind (five nodes; a leader cut off from its followers acknowledges nothing; a follower far behind catches up with no failover)"
python3 scripts/cluster_test.py target/release --nodes 5 --kills 3
python3 scripts/cluster_test.py target/release --minority
python3 scripts/cluster_test.py target/release --behind
step "scripts/settlement-crash-test.sh (settlement and venue kill -9 mid-run, audit and reconciliation)"
scripts/settlement-crash-test.sh 8
step "scripts/custody-in-test.sh (registry custody in: lot deposits through the venue's checks, exactly once)"
scripts/custody-in-test.sh
step "scripts/demo.sh (the README's main command)"
TONNEX_DEMO_SECONDS=5 TONNEX_DEMO_OPS=100000 scripts/demo.sh
step "scripts/web_test.py (tonnex-web in headless Chromium; screenshots in target/web-screenshots/)"
python3 scripts/web_test.py target/release
step "scripts/web-bench.sh (every page under 200 ms with a million-trade ledger)"
scripts/web-bench.sh 2
step "all passed"
