#!/usr/bin/env bash
# Set up a fresh machine. Usage: scripts/setup.sh serve | dev
#   serve: the slim serving install (no torch) + the CJK font for evidence images
#   dev:   everything the tests need: training/eval/cctv extras, Label Studio in its own venv,
#          GStreamer's RTSP server and PostgreSQL from Debian
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-dev}
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_packages=(fonts-wqy-microhei)
if [ "$mode" = dev ]; then
  apt_packages+=(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                 gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav ffmpeg postgresql)
fi
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = serve ]; then
  .venv/bin/pip install -q -e .
else
  # torch is pinned to the build this workplace keeps on disk (a plain `torch` pulls a multi-GB build)
  .venv/bin/pip install -q -e '.[train,eval,cctv,dev]'
  if [ ! -x .venv-labelstudio/bin/label-studio ]; then
    "$PY" -m venv .venv-labelstudio
    .venv-labelstudio/bin/pip install -q label-studio==1.23.2
  fi
fi
