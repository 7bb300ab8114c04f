"""A real inspector-app server for tests (also the frontend's browser tests).

    import app_fixtures
    from app_fixtures import AppServer

    app_server = app_fixtures.app_server  # the fixture (module scope; uses conftest's tiny_model_dir)

    def test_something(app_server: AppServer):
        r = httpx.post(f"{app_server.base_url}/app/api/login", json=app_server.login("inspector"))

``app_server`` (module scope) runs ``uvicorn --factory inference_service.api.app:create_app`` on 127.0.0.1 and a
free port with the tiny test model (classes fire=red, smoke=green, no_helmet=blue) and a fresh SQLite database
and data folder. Users (password for all: ``PASSWORD``):

    org A "A 市应急管理局": inspector "insp_a" (张检查), supervisor "sup_a" (李主管), admin "admin_a" (王管理)
    org B "B 区安监站":      inspector "insp_b" (赵检查)

Photos the tiny model scores: :func:`fire_photo` (one 现场明火 FIRE-001, critical), :func:`fire_and_smoke_photo`
(FIRE-001 + FIRE-002), :func:`clean_photo` (nothing, no warning). :func:`start_app_server` starts another one (e.g. on
PostgreSQL, or a second process on the same database).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from _builders import build_model_dir, encode, scene
from _cctv import free_port

from inference_service.accounts import Accounts
from inference_service.storage import Database

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "test-pass-123"
ORG_A, ORG_B = "A 市应急管理局", "B 区安监站"
USERS: dict[str, tuple[str, str, str]] = {  # key -> (username, role, display name); the org is in ORG_OF
    "inspector": ("insp_a", "inspector", "张检查"),
    "supervisor": ("sup_a", "supervisor", "李主管"),
    "admin": ("admin_a", "admin", "王管理"),
    "inspector_b": ("insp_b", "inspector", "赵检查"),
}
ORG_OF = {"inspector": ORG_A, "supervisor": ORG_A, "admin": ORG_A, "inspector_b": ORG_B}


@dataclass
class AppServer:
    base_url: str
    data_dir: Path
    database_url: str
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    users: dict[str, tuple[str, str, str]] = field(default_factory=lambda: dict(USERS))

    def login(self, who: str) -> dict[str, str]:
        """The JSON body of POST /app/api/login for ``who`` (a key of USERS)."""
        return {"username": self.users[who][0], "password": PASSWORD}

    def client(self, who: str) -> httpx.Client:
        """An httpx client logged in as ``who``, sending the CSRF header on every request."""
        c = httpx.Client(base_url=self.base_url, timeout=60, headers={"Accept-Language": "en"})
        r = c.post("/app/api/login", json=self.login(who))
        r.raise_for_status()
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c


def seed_users(database_url: str) -> None:
    db = Database(database_url)
    try:
        accounts = Accounts(db)
        existing = {u.username for org in (ORG_A, ORG_B) for u in accounts.list_users(accounts.ensure_org(org))}
        for key, (username, role, display) in USERS.items():
            if username not in existing:
                accounts.add_user(username, PASSWORD, role, accounts.ensure_org(ORG_OF[key]), display)
    finally:
        db.close()


@contextmanager
def start_app_server(
    model_dir: Path,
    data_dir: Path,
    database_url: str | None = None,
    *,
    seed: bool = True,
    repo: Path = REPO,
    **env: str,
) -> Iterator[AppServer]:
    """Run the service of the checkout ``repo`` in its own process until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or str(data_dir / "hazardscan.db")
    if seed:
        seed_users(url)
    port = free_port()
    log = data_dir / f"server-{port}.log"
    environ = {
        **os.environ,
        "HAZARDSCAN_MODEL_PATH": str(model_dir),
        "HAZARDSCAN_DATA_DIR": str(data_dir),
        "HAZARDSCAN_DATABASE_URL": url,
        "HAZARDSCAN_THREADS": "1",
        "HAZARDSCAN_ORT_SPINNING": "false",
        **env,
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "inference_service.api.app:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=repo, env=environ, stdout=out, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}", data_dir, url, proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{server.base_url}/app/api/me", timeout=2).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not come up: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def app_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with start_app_server(tiny_model_dir, tmp_path_factory.mktemp("appdata")) as server:
        yield server


# ---- photos the tiny model scores (640×480 JPEG; a red 160×160 square fills one model cell) -----------------

FIRE_BOX = (160.0, 80.0, 320.0, 240.0)
SMOKE_BOX = (480.0, 240.0, 640.0, 400.0)


def fire_photo(seed: int = 0) -> bytes:
    """One 现场明火 (FIRE-001) at FIRE_BOX; ``seed`` changes a corner pixel so the bytes differ."""
    img = scene(640, 480, [(160, 80, 320, 240, (230, 20, 20)), (0, 0, 4, 4, (seed % 256, 114, 114))])
    return encode(img, "JPEG", quality=92)


def fire_and_smoke_photo() -> bytes:
    img = scene(640, 480, [(160, 80, 320, 240, (230, 20, 20)), (480, 240, 640, 400, (20, 230, 20))])
    return encode(img, "JPEG", quality=92)


def clean_photo(seed: int = 0) -> bytes:
    """Nothing the model raises, and no warning: grey with darker grey stripes (a uniform grey photo is
    featureless, and a hazard-free verdict on it would prove nothing)."""
    stripes = [(x, 0, x + 40, 480, (90, 90, 90)) for x in range(0, 640, 80)]
    return encode(scene(640, 480, [*stripes, (0, 0, 4, 4, (seed % 256, 114, 114))]), "JPEG", quality=92)


SCENE_CLASSES = ["fire", "exit_sign", "person"]  # red, green, blue: FIRE-001, and the scene rules' classes


@contextmanager
def scene_model_server(root: Path) -> Iterator[AppServer]:
    """An app server on a tiny model of :data:`SCENE_CLASSES` with no thresholds: a person in a declared
    work-at-height scene raises a suspected CONST-002."""
    model = build_model_dir(root / "m", classes=SCENE_CLASSES, class_thresholds={})
    with start_app_server(model, root / "data") as s:
        yield s


def open_item(c: httpx.Client, unit: str = "阳泉某化工厂", seed: int = 0, confirm: bool = True) -> dict:
    """A new inspection of ``unit`` with one fire photo; its finding confirmed into the ledger (the item), or not
    (the finding)."""
    insp = c.post("/app/api/inspections", json={"unit": {"name": unit, "address": "桃北路"}, "scene": "industry"})
    photo = c.post(
        f"/app/api/inspections/{insp.json()['id']}/photos",
        files={"photo": ("p.jpg", fire_photo(seed=seed), "image/jpeg")},
        data={"idempotency_key": f"ledger-{unit}-{seed}"},
    ).json()
    finding = photo["findings"][0]
    if not confirm:
        return finding
    decided = c.post(f"/app/api/findings/{finding['id']}/decision", json={"decision": "confirm"}).json()
    return c.get(f"/app/api/ledger/{decided['ledger_item_id']}").json()
