#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml. Run it after changing a dependency; commit what it writes.
#   scripts/lock.sh                     keep every locked version that still fits (uv prefers the old pins)
#   scripts/lock.sh --upgrade-package X move X (and only what X needs) to its newest fitting release
# uv resolves for Python 3.11 on x86-64 manylinux whatever machine runs it. The locks leave out
# `opencv-python`: ultralytics asks for it, but the service uses `opencv-python-headless` and two wheels must
# never write one `cv2`; the installs use --no-deps, so the lock is the whole environment, and every line carries
# the sha256 of its files, so pip installs nothing but those files (--require-hashes).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || python3 -m pip install -q uv
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-emit-package opencv-python
        --custom-compile-command "scripts/lock.sh" --quiet "$@")
uv pip compile pyproject.toml requirements-build.in --extra train --extra eval --extra cctv --extra dev \
  -o requirements-dev.txt "${common[@]}"
uv pip compile pyproject.toml requirements-build.in -c requirements-dev.txt -o requirements.txt "${common[@]}"
# the same pins in the standard format (PEP 751), with every artifact's URL and sha256: the record a tool that
# reads pylock.toml (uv, pip in time) or an auditor checks; the installs read requirements-dev.txt
uv pip compile pyproject.toml requirements-build.in --extra train --extra eval --extra cctv --extra dev \
  -c requirements-dev.txt -o pylock.toml "${common[@]}"
echo "label-studio==1.23.2" | uv pip compile - -o requirements-labelstudio.txt "${common[@]}"
# uv's own lock of the project, for the platform set in pyproject's [tool.uv]: the same versions again
# (tests/test_lock.py); `uv lock` keeps the versions uv.lock holds unless told --upgrade-package
uv lock --quiet "${@}"
