#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite (real bubblewrap, Redis, Celery, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
