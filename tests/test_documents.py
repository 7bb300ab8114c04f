"""Printable documents through a real server: 现场检查记录 and 隐患整改通知书 as HTML and as PDF (WeasyPrint,
CJK font): a first page, then a page per photo; photos with boxes, hazards, legal basis, deadlines, signatures."""

from __future__ import annotations

import io
import re
from urllib.parse import unquote

import app_fixtures
import pytest
from app_fixtures import AppServer, clean_photo, fire_and_smoke_photo, fire_photo
from pypdf import PdfReader

from inference_service.app.documents import DocHazard, DocInspection, DocPhoto, render

app_server = app_fixtures.app_server  # the fixture


@pytest.fixture(scope="module")
def inspection(app_server: AppServer) -> dict:
    c = app_server.client("inspector")
    unit = {"name": "阳泉市某商住楼", "address": "德胜街 8 号", "credit_code": "91140300MA0TEST01X"}
    insp = c.post("/app/api/inspections", json={"unit": unit, "scene": "residential_ebike"}).json()
    photos = []
    for key, data in (("d1", fire_photo(seed=31)), ("d2", fire_and_smoke_photo()), ("d3", clean_photo(seed=32))):
        r = c.post(f"/app/api/inspections/{insp['id']}/photos", files={"photo": ("p.jpg", data, "image/jpeg")},
                   data={"idempotency_key": f"doc-{key}"})  # fmt: skip
        photos.append(r.json())
    c.post(
        f"/app/api/findings/{photos[0]['findings'][0]['id']}/decision", json={"decision": "confirm", "note": "楼道明火"}
    )
    fire2, _smoke2 = sorted(photos[1]["findings"], key=lambda f: f["hazard_id"])
    c.post(f"/app/api/findings/{fire2['id']}/decision", json={"decision": "reject"})
    # photo 2: smoke stays pending; photo 3: an added hazard no model detects
    c.post(f"/app/api/photos/{photos[2]['id']}/findings", json={"hazard_id": "FIRE-006", "box": [5, 5, 300, 200]})
    return insp


def pdf_pages(data: bytes) -> list[str]:
    """Each page's text without white space (the title is letter-spaced)."""
    return ["".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def test_the_record_has_a_first_page_and_a_page_per_photo(app_server: AppServer, inspection: dict):
    c = app_server.client("inspector")
    html = c.get(f"/app/inspections/{inspection['id']}/record")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    text = html.text
    assert "现场检查记录" in text and "阳泉市某商住楼" in text and "91140300MA0TEST01X" in text
    assert "商住楼/电动自行车" in text and "张检查" in text and "检查人员（签名）" in text
    assert text.count('<section class="page">') == 1 + 3
    assert text.count("data:image/jpeg;base64,") == 3  # the photos, boxes drawn, inline
    assert "现场明火" in text and "消防法" in text and "楼道明火" in text and "占用、堵塞安全出口" in text
    assert "待确认" in text  # the pending smoke is listed as such; the rejected fire is not listed
    pdf = c.get(f"/app/inspections/{inspection['id']}/record.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    pages = pdf_pages(pdf.content)
    assert len(pages) == 1 + 3
    assert "现场检查记录" in pages[0] and "阳泉市某商住楼" in pages[0]  # the CJK font is embedded and mapped
    assert all(f"照片{i}" in pages[i] for i in (1, 2, 3))
    assert "第1页/共4页" in pages[0]
    assert "返回检查" not in "".join(pages)  # the screen's links are not printed
    name = unquote(pdf.headers["content-disposition"].split("filename*=UTF-8''", 1)[1])
    assert re.fullmatch(r"现场检查记录-阳泉市某商住楼-\d{8}\.pdf", name), name


def test_a_document_on_screen_links_back_and_to_its_pdf(app_server: AppServer, inspection: dict):
    c = app_server.client("inspector")
    text = c.get(f"/app/inspections/{inspection['id']}/notice").text
    assert f'<a class="back" href="/app/#/inspection/{inspection["id"]}">返回检查</a>' in text
    assert f'href="/app/inspections/{inspection["id"]}/notice.pdf"' in text
    assert '<link rel="icon" href="data:,">' in text  # no /favicon.ico 404


def test_the_notice_lists_confirmed_hazards_with_deadlines(app_server: AppServer, inspection: dict):
    c = app_server.client("supervisor")
    text = c.get(f"/app/inspections/{inspection['id']}/notice").text
    assert "隐患整改通知书" in text and "责令你单位" in text and "检查单位（盖章）" in text
    assert text.count('<section class="page">') == 1 + 2  # photo 2 has no confirmed hazard
    assert re.search(r"整改期限</th><td>\d{4}-\d{2}-\d{2} 23:59", text)
    assert "烟雾" not in text  # pending, not confirmed
    pages = pdf_pages(c.get(f"/app/inspections/{inspection['id']}/notice.pdf").content)
    assert len(pages) == 3 and "隐患整改通知书" in pages[0]


def test_documents_of_another_organisation_are_not_found(app_server: AppServer, inspection: dict):
    b = app_server.client("inspector_b")
    for doc in ("record", "record.pdf", "notice", "notice.pdf"):
        assert b.get(f"/app/inspections/{inspection['id']}/{doc}").status_code == 404
    a = app_server.client("inspector")
    a.cookies.clear()
    assert a.get(f"/app/inspections/{inspection['id']}/record").status_code == 401


def test_text_is_escaped():
    hazard = DocHazard("<b>x</b>", "en", "high", "confirmed", "inspector", None, "basis", "advice", "<script>", None)
    doc = DocInspection("N1", "<img src=x>", "addr", None, "scene", "who", "org", "2026-12-01 10:00", None,
                        [DocPhoto(1, b"\xff\xd8", "ab" * 32, 10, 10, None, "m 1", [hazard])])  # fmt: skip
    html = render(doc, "record")
    assert "<img src=x>" not in html and "&lt;img src=x&gt;" in html and "<script>" not in html
