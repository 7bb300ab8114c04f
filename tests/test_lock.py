"""The lock files: they satisfy pyproject.toml, agree with each other, and are what is installed.

A fresh machine installs `requirements*.txt` with ``--no-deps`` (scripts/setup.sh), so these pins are
the whole environment; scripts/lock.sh regenerates them.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


def parse_lock(text: str) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line (comments and ``# via`` lines skipped)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        m = PIN.match(line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def unmet(requirements: list[str], pins: dict[str, str]) -> list[str]:
    """The requirements (for this interpreter) that no pin satisfies."""
    missing = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            missing.append(f"{text} (locked: {version})")
    return missing


@pytest.mark.parametrize(
    ("requirements", "lock", "expected"),
    [
        (["numpy>=1.26"], "numpy==2.2.6\n    # via pkg\n", []),  # met
        (["numpy>=3"], "numpy==2.2.6\n", ["numpy>=3 (locked: 2.2.6)"]),  # pinned below the floor
        (["Foo_Bar>=1"], "foo-bar==1.0\n", []),  # names compare canonicalised
        (["absent"], "# absent==1.0 is a comment\n", ["absent (locked: None)"]),  # only real pins count
        (["win-only; sys_platform == 'win32'"], "", []),  # a marker that does not apply here
    ],
)
def test_unmet_reads_pins_and_specifiers(requirements: list[str], lock: str, expected: list[str]):
    assert unmet(requirements, parse_lock(lock)) == expected


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK_FILES = {"serve": "requirements.txt", "dev": "requirements-dev.txt"}
LOCKS = {name: parse_lock((ROOT / file).read_text()) for name, file in LOCK_FILES.items()}


def test_serving_lock_meets_the_default_install_and_holds_no_torch():
    assert unmet(PROJECT["dependencies"], LOCKS["serve"]) == []
    assert not {"torch", "ultralytics", "opencv-python"} & LOCKS["serve"].keys()


def test_dev_lock_meets_every_extra():
    extras = [r for reqs in PROJECT["optional-dependencies"].values() for r in reqs]
    assert unmet(PROJECT["dependencies"] + extras, LOCKS["dev"]) == []
    assert "opencv-python" not in LOCKS["dev"]  # one OpenCV wheel: the headless one


def test_serve_and_dev_pin_the_same_versions():
    assert {n: v for n, v in LOCKS["serve"].items() if LOCKS["dev"].get(n) != v} == {}


def test_the_environment_is_the_lock():
    marker = Path(sys.prefix) / ".hazardscan-dev.lock-sha256"
    if not marker.exists():
        pytest.skip(f"not the locked dev environment ({marker} missing): run scripts/setup.sh dev")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    drift = {n: (v, installed.get(n)) for n, v in LOCKS["dev"].items() if installed.get(n) != v}
    assert drift == {}, "installed versions differ from requirements-dev.txt (locked, installed)"
    assert "opencv-python" not in installed


def test_pylock_holds_the_dev_pins_with_hashes():
    """pylock.toml (PEP 751) is the dev lock again, in the standard format: same names and versions, and
    every package names at least one artifact with a sha256."""
    pylock = tomllib.loads((ROOT / "pylock.toml").read_text())
    assert pylock["lock-version"] == "1.0"
    packages = pylock["packages"]
    assert {canonicalize_name(p["name"]): p["version"] for p in packages} == LOCKS["dev"]
    unhashed = [
        p["name"]
        for p in packages
        if not any(a.get("hashes", {}).get("sha256") for a in [p.get("sdist", {}), *p.get("wheels", [])])
    ]
    assert unhashed == []


def test_uv_lock_holds_the_dev_pins():
    """uv.lock (`uv lock` for the platform in pyproject's [tool.uv]) locks the same versions as requirements-dev.txt:
    every dev pin but the editable install's build backend, nothing more but the project itself and packages that
    CPython never installs, and never opencv-python."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {canonicalize_name(p["name"]): p for p in lock["package"]}
    versions = {n: p["version"] for n, p in packages.items() if n != "hazardscan"}
    build_only = {canonicalize_name(r) for r in ("hatchling", "editables", "trove-classifiers", "tomlkit")}
    assert {n: v for n, v in LOCKS["dev"].items() if n not in build_only and versions.get(n) != v} == {}
    extra = set(versions) - set(LOCKS["dev"])
    assert extra <= {"brotlicffi"}, f"locked by uv only: {sorted(extra)}"
    assert "opencv-python" not in packages

    def requirements(package: dict[str, Any]) -> list[dict[str, Any]]:
        optional = package.get("optional-dependencies", {}).values()
        return [*package.get("dependencies", []), *(d for deps in optional for d in deps)]

    dependents = [
        d.get("marker", "") for p in packages.values() for d in requirements(p) if canonicalize_name(d["name"]) in extra
    ]
    assert all("platform_python_implementation != 'CPython'" in m for m in dependents), dependents
