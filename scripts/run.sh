#!/usr/bin/env bash
# Set everything up and run the bot (configuration comes from .env; see .env.example).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
exec .venv/bin/python bot.py "$@"
