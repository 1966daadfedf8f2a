#!/usr/bin/env bash
# scripts/dev-worktree.sh NAME (development only): a git worktree /work/wt-NAME on a new branch NAME from main, sharing main's venv and hidden data.
set -euo pipefail
name=$1
cd /work/main
git worktree add -q -b "$name" "/work/wt-$name" main
cd "/work/wt-$name"
ln -s /work/main/.venv .venv
for f in /work/main/hidden_data/*; do
  b=$(basename "$f"); [ "$b" = README.md ] || ln -s "$f" "hidden_data/$b"
done
echo "/work/wt-$name ready"
