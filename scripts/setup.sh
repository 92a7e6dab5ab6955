#!/usr/bin/env bash
# Create .venv (if needed) and install the pinned requirements: `scripts/setup.sh` or `scripts/setup.sh dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-${1:-run}"
reqs=requirements.txt
[ "${1:-run}" = dev ] && reqs=requirements-dev.txt
# Reinstall only when the requirement files changed since the last install.
digest=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$reqs"
    echo "$digest" > "$stamp"
fi
# The browser tests drive Debian's chromium (never a downloaded browser): install it when missing and possible.
if [ "${1:-run}" = dev ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing chromium for the browser tests" >&2
        if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >&2; then
            echo "setup: WARNING: chromium could not be installed; the browser tests will be SKIPPED" >&2
        fi
    else
        echo "setup: WARNING: /usr/bin/chromium is missing and this is not root with apt-get;" \
            "the browser tests will be SKIPPED (install Debian's chromium package)" >&2
    fi
fi
