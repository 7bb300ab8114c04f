"""Doubtful findings in the inspector app, through a real server: a suspicion (a scene rule that only suspects
the hazard) and every hazard of a photo with a warning are kept as such, wait for the inspector, stay out of the
ledger until confirmed, and say so in the record (HTML and PDF) and on its photos; a dark rectification photo
proves nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _builders import encode, scene
from app_fixtures import AppServer, scene_model_server
from PIL import Image
from pypdf import PdfReader

BOX = (160, 80, 320, 240)  # one cell of the tiny model's grid on a 640×480 photo
UNIT = {"name": "阳泉某建筑公司", "address": "矿区北大街 1 号"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with scene_model_server(tmp_path_factory.mktemp("suspected")) as s:
        yield s


def photo(rgb: tuple[int, int, int], whole: bool = False) -> bytes:
    box = (0, 0, 640, 480) if whole else BOX
    return encode(scene(640, 480, [(*box, rgb)]), "JPEG", quality=92)


def upload(c, inspection_id: str, data: bytes, key: str, scene_id: str | None = None) -> dict:
    form = {"idempotency_key": key, **({"scene": scene_id} if scene_id else {})}
    r = c.post(
        f"/app/api/inspections/{inspection_id}/photos", files={"photo": ("p.jpg", data, "image/jpeg")}, data=form
    )
    assert r.status_code == 201, r.text
    return r.json()


def marks(f: dict) -> tuple[str, bool, bool, bool, str | None]:
    return f["hazard_id"], f["suspected"], f["unconfirmed"], f["awaiting_confirmation"], f["ledger_item_id"]


def test_doubtful_findings_wait_for_the_inspector_and_enter_the_ledger_only_when_confirmed(server: AppServer):
    c = server.client("inspector")
    insp = c.post("/app/api/inspections", json={"unit": UNIT, "scene": "construction"}).json()
    at_height = upload(c, insp["id"], photo((30, 30, 230)), "sus-1", "work_at_height")
    flare = upload(c, insp["id"], photo((230, 20, 20), whole=True), "sus-2")  # one colour all over: featureless
    fire = upload(c, insp["id"], photo((230, 20, 20)), "sus-3")

    (suspicion,) = at_height["findings"]
    assert marks(suspicion) == ("CONST-002", True, False, True, None) and suspicion["severity"] == "critical"
    assert [w["code"] for w in flare["warnings"]] == ["featureless"] and flare["findings"]
    assert all(marks(f) == ("FIRE-001", False, True, True, None) for f in flare["findings"])
    (detection,) = fire["findings"]
    assert marks(detection) == ("FIRE-001", False, False, False, None)  # a detection, still pending: no ledger yet
    assert c.get("/app/api/ledger").json()["total"] == 0

    # the record says which wait for the inspector, and why; the notice lists none of them
    record = c.get(f"/app/inspections/{insp['id']}/record").text
    assert record.count("疑似隐患，待检查员确认") == 2 and record.count("照片存疑，待检查员确认") == 2 * len(
        flare["findings"]
    )
    assert "不进入隐患台账" in record
    pdf = "".join(
        "".join(p.extract_text().split())
        for p in PdfReader(io.BytesIO(c.get(f"/app/inspections/{insp['id']}/record.pdf").content)).pages
    )
    assert "疑似隐患，待检查员确认" in pdf and "照片存疑，待检查员确认" in pdf
    assert "高处作业" not in c.get(f"/app/inspections/{insp['id']}/notice").text

    # the inspector confirms the suspicion: now it is a hazard, in the ledger at its severity
    confirmed = c.post(f"/app/api/findings/{suspicion['id']}/decision", json={"decision": "confirm"}).json()
    assert confirmed["status"] == "confirmed" and confirmed["suspected"] and not confirmed["awaiting_confirmation"]
    (item,) = c.get("/app/api/ledger").json()["items"]
    assert (item["finding_id"], item["hazard_id"], item["severity"]) == (suspicion["id"], "CONST-002", "critical")
    record = c.get(f"/app/inspections/{insp['id']}/record").text
    assert record.count("疑似隐患，待检查员确认") == 0 and "已确认" in record


def _dashes(jpeg: bytes, x: int, y1: int, y2: int) -> float:
    """Share of the pixels of column ``x`` between ``y1`` and ``y2`` that are the critical crimson."""
    image = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
    return float((np.abs(image[y1:y2, x] - (220, 20, 60)).max(axis=1) < 60).mean())


def test_the_photo_with_boxes_dashes_a_pending_suspicion_until_it_is_confirmed(server: AppServer):
    c = server.client("inspector")
    insp = c.post("/app/api/inspections", json={"unit": UNIT, "scene": "construction"}).json()
    p = upload(c, insp["id"], photo((30, 30, 230)), "dash-1", "work_at_height")
    left = BOX[0] + 1  # inside the box's left edge, on the blue square
    before = _dashes(c.get(p["evidence_url"]).content, left, BOX[1] + 30, BOX[3] - 5)
    c.post(f"/app/api/findings/{p['findings'][0]['id']}/decision", json={"decision": "confirm"})
    after = _dashes(c.get(p["evidence_url"]).content, left, BOX[1] + 30, BOX[3] - 5)
    assert 0.3 < before < 0.8 and after > 0.95


def test_a_dark_rectification_photo_is_not_an_ai_pass(server: AppServer, tmp_path: Path):
    c = server.client("inspector")
    insp = c.post("/app/api/inspections", json={"unit": UNIT, "scene": "construction"}).json()
    fire = upload(c, insp["id"], photo((230, 20, 20)), "dark-1")
    c.post(f"/app/api/findings/{fire['findings'][0]['id']}/decision", json={"decision": "confirm"})
    item = next(i for i in c.get("/app/api/ledger").json()["items"] if i["finding_id"] == fire["findings"][0]["id"])
    dark = encode(Image.new("RGB", (640, 480), (8, 8, 8)), "JPEG", quality=92)
    r = c.post(
        f"/app/api/ledger/{item['id']}/rectification",
        files={"photo": ("fixed.jpg", dark, "image/jpeg")},
        data={"idempotency_key": "dark-fix", "note": "已整改"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["ai_recheck"] is None and "too_dark" in r.json()["history"][-1]["note"]
