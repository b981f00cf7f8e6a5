#!/usr/bin/env bash
# Installs what the browser tests need when it is missing: Debian's
# chromium and chromium-driver, and Selenium from PyPI.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "== installing chromium and chromium-driver (Debian) for the browser tests"
    as_root apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
        || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
if ! python3 -c "import selenium" 2>/dev/null; then
    echo "== installing selenium (Python) for the browser tests"
    python3 -m pip install --quiet selenium 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages selenium
fi
command -v chromium >/dev/null && command -v chromedriver >/dev/null && python3 -c "import selenium" \
    || { echo "cannot install the browser test tools" >&2; exit 1; }
