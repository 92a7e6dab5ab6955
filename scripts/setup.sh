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
