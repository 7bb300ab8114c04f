#!/usr/bin/env bash
# Set up a fresh machine. Usage: scripts/setup.sh serve | dev
#   serve: the slim serving install (no torch) + the CJK font for evidence images
#   dev:   everything the tests need: training/eval/cctv extras, Label Studio in its own venv,
#          GStreamer's RTSP server and PostgreSQL from Debian
#   Python packages come from requirements*.txt (see scripts/lock.sh), never resolved anew.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-dev}
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_packages=(fonts-wqy-microhei libpango-1.0-0 libpangoft2-1.0-0)  # pango: WeasyPrint (inspector app PDFs)
if [ "$mode" = dev ]; then
  apt_packages+=(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                 gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav ffmpeg postgresql
                 chromium curl)
fi
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python packages: exactly the versions in requirements*.txt (scripts/lock.sh writes them), installed
# with --no-deps so that nothing is resolved anew here. A stamp of the lock and pyproject.toml makes a rerun
# with nothing changed a no-op that needs no network.
lockfile() { [ "$1" = serve ] && echo requirements.txt || echo "requirements-$1.txt"; }
stamp() { cat "$(lockfile "$1")" pyproject.toml requirements-build.in | sha256sum | cut -d' ' -f1; }
install_locked() {  # venv lock
  local venv=$1 lock=$2 marker="$1/.hazardscan-$2.lock-sha256"
  [ -f "$marker" ] && [ "$(cat "$marker")" = "$(stamp "$lock")" ] && return 1
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps --require-hashes -r "$(lockfile "$lock")"
  return 0
}
if [ "$mode" = serve ] && [ -f .venv/.hazardscan-dev.lock-sha256 ] \
   && [ "$(cat .venv/.hazardscan-dev.lock-sha256)" = "$(stamp dev)" ]; then
  lock=dev  # the dev install holds everything serving needs, at the same versions
else
  lock=$([ "$mode" = serve ] && echo serve || echo dev)
fi
if install_locked .venv "$lock"; then
  # one OpenCV: a `cv2` written by opencv-python (an older install; ultralytics asks for it) over the headless
  # wheel's; removing it deletes files both wrote, so the headless wheel goes back in whole
  if .venv/bin/pip show -q opencv-python >/dev/null 2>&1; then
    .venv/bin/pip uninstall -q -y opencv-python
    .venv/bin/pip install -q --no-deps --force-reinstall \
      "$(grep -o '^opencv-python-headless==[^ ;]*' "$(lockfile "$lock")")"
  fi
  .venv/bin/pip install -q --no-deps --no-build-isolation -e .
  stamp "$lock" > ".venv/.hazardscan-$lock.lock-sha256"
else
  echo "setup: .venv is up to date with $(lockfile "$lock")"
fi
if [ "$mode" = dev ] && install_locked .venv-labelstudio labelstudio; then
  stamp labelstudio > .venv-labelstudio/.hazardscan-labelstudio.lock-sha256
fi
