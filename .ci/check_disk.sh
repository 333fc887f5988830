#!/usr/bin/env bash
# Says up front, in words, when the disk cannot hold the virtual environment: the locked CUDA build
# of torch and its libraries make a venv of about 7.4 GB, and pip's own "[Errno 28] No space left
# on device" comes only after minutes of installing. Usage: check_disk.sh VENV_DIR
set -euo pipefail
venv=${1:-.venv}
[ -x "$venv/bin/python" ] && exit 0  # a venv already there: a re-install only swaps packages
need_mb=${VITRON_SETUP_NEED_MB:-7700}  # the venv itself is 7.4 GB: refuse only what cannot fit
target=$(realpath -m "$venv")
while [ ! -d "$target" ]; do target=$(dirname "$target"); done  # the nearest folder there now
free_kb=$(df -Pk "$target" | awk 'NR == 2 {print $4}')
if [ "$free_kb" -lt $((need_mb * 1024)) ]; then
  echo "setup needs about ${need_mb} MB free for the virtual environment (torch and its CUDA" \
       "libraries), but $target has $((free_kb / 1024)) MB free: free some space and run it again" >&2
  exit 1
fi
echo "disk: $(df -Ph "$target" | awk 'NR == 2 {print $4}') free for the virtual environment"
