"""A real Label Studio server on loopback for the tests, started once per session.

The server runs from its own virtual environment (its pinned dependencies must not meet the
project's), found at ``$HAZARDSCAN_LABEL_STUDIO_BIN``, else ``<repo>/.venv-labelstudio/bin/label-studio``,
else ``/opt/ls-venv/bin/label-studio``. Without one the tests skip, except under ``CI`` where they fail.

    python3 -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install label-studio==1.23.2

SQLite in a temp folder, nothing that phones home (analytics, version check). A fresh database needs
~25 s of migrations on 2 cores; the migrated, still empty database is kept in the pytest cache
(``.pytest_cache``, keyed by the Label Studio version) so later sessions start in a few seconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

LABEL_STUDIO_VERSION = "1.23.2"  # what .ci/run installs; other 1.23.x should work
REPO = Path(__file__).resolve().parent.parent
CANDIDATES = (REPO / ".venv-labelstudio" / "bin" / "label-studio", Path("/opt/ls-venv/bin/label-studio"))
START_TIMEOUT_S = float(os.environ.get("HAZARDSCAN_LABEL_STUDIO_TIMEOUT", "240"))
DB_NAME = "label_studio.sqlite3"


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    data_dir: Path
    log: Path


def find_label_studio() -> Path | None:
    env = os.environ.get("HAZARDSCAN_LABEL_STUDIO_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    return next((p for p in CANDIDATES if p.is_file()), None)


def installed_version(binary: Path) -> str | None:
    """Label Studio's version from the dist-info of the binary's own environment (no process start)."""
    found = sorted(binary.resolve().parent.parent.glob("lib/python*/site-packages/label_studio-*.dist-info"))
    return found[-1].name.removeprefix("label_studio-").removesuffix(".dist-info") if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path) -> dict[str, str]:
    """The parent's environment without anything Label Studio would read, plus offline settings.

    Label Studio reads ``LABEL_STUDIO_<NAME>``, ``HEARTEX_<NAME>`` and bare ``<NAME>``; the prefixed
    spelling wins, so every setting below is prefixed and overrides a stray ``HOST`` or ``DEBUG``.
    """
    dropped = ("LABEL_STUDIO_", "HEARTEX_", "DJANGO_", "PYTHON", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.pop("USERNAME", None)  # with PASSWORD, `label-studio start` would create that user itself
    env.pop("PASSWORD", None)
    settings = {
        "BASE_DATA_DIR": str(data_dir),
        "DATABASE_NAME": str(data_dir / DB_NAME),
        "HOST": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "FEATURE_FLAGS_OFFLINE": "true",
        "CONVERTER_DOWNLOAD_RESOURCES": "false",
        "DISABLE_SIGNUP_WITHOUT_LINK": "false",
        "ENABLE_LEGACY_API_TOKEN": "false",  # the 1.23 default, stated: tokens must be Personal Access Tokens
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    env.update({f"LABEL_STUDIO_{k}": v for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Label Studio exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Label Studio not healthy after {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")


def _tail(log: Path, n: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:]) if log.exists() else "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="session")
def label_studio(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LabelStudioServer]:
    binary = find_label_studio()
    if binary is None:
        where = os.environ.get("HAZARDSCAN_LABEL_STUDIO_BIN") or " or ".join(str(p) for p in CANDIDATES)
        message = (
            f"no Label Studio server at {where}; install it in its own environment: python3 -m venv "
            f".venv-labelstudio && .venv-labelstudio/bin/pip install label-studio=={LABEL_STUDIO_VERSION}"
        )
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    data_dir = tmp_path_factory.mktemp("labelstudio")
    version = installed_version(binary)
    cache = getattr(request.config, "cache", None)
    template: Path | None = cache.mkdir(f"labelstudio-{version}") / DB_NAME if cache is not None and version else None
    migrated = False
    if template is not None and template.is_file():
        shutil.copyfile(template, data_dir / DB_NAME)
        migrated = True
    url = f"http://127.0.0.1:{_free_port()}"
    log = data_dir / "server.log"
    command = [str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--data-dir", str(data_dir)],
            cwd=data_dir,
            env=server_env(data_dir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, proc, log)
        if template is not None and not migrated:  # before any user exists: an empty, migrated database
            partial = template.with_suffix(".tmp")
            with closing(sqlite3.connect(data_dir / DB_NAME)) as src, closing(sqlite3.connect(partial)) as dst:
                src.backup(dst)
            partial.replace(template)
        yield LabelStudioServer(url, data_dir, log)
    finally:
        _stop(proc)
