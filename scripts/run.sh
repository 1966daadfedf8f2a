#!/usr/bin/env bash
# Set up, then run the server with its embedded defaults: SQLite, a built-in broker, one local worker,
# demo instructor/student and the rpz-cnn assignment. Extra arguments go to `autograder serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/autograder serve "$@"
