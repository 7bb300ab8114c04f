"""中文 and English: advice in both languages, API error messages chosen by ``Accept-Language``."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import app_fixtures
import numpy as np
import pytest
from test_api import FIRE_PHOTO, LiveServer

from inference_service.api import errors, messages
from inference_service.api.settings import Settings
from inference_service.app.views import hazard_fields
from inference_service.detections import Detections
from inference_service.taxonomy import Taxonomy, parse_taxonomy

CJK = re.compile(r"[\u4e00-\u9fff]")

DOC: dict[str, Any] = {
    "version": "t",
    "detector_classes": [{"name": "fire"}],
    "hazards": [
        {
            "id": "X-1",
            "name_zh": "火",
            "name_en": "Fire",
            "domain": "消防",
            "severity": "high",
            "legal_basis": "法",
            "advice_zh": "灭火。",
            "advice_en": "Put it out.",
            "rule": {"when": ["fire"]},
        }
    ],
}


def test_every_shipped_hazard_has_advice_in_both_languages(taxonomy: Taxonomy):
    assert len(taxonomy.hazards) >= 18
    for h in taxonomy.hazards:
        assert CJK.search(h.advice_zh), h.id
        assert h.advice_en and not CJK.search(h.advice_en), h.id
        assert h.advice_en[0].isupper() and h.advice_en.endswith("."), h.id


def test_advice_en_travels_with_findings_and_the_taxonomy_dict():
    tax = parse_taxonomy(DOC)
    assert tax.as_dict()["hazards"][0]["advice_en"] == "Put it out."
    dets = Detections(xyxy=np.array([[0, 0, 10, 10]]), class_id=np.array([0]), score=np.array([0.9]))
    (finding,) = tax.evaluate(dets, ["fire"])
    assert (finding.advice_zh, finding.advice_en) == ("灭火。", "Put it out.")


def test_a_users_taxonomy_without_advice_en_still_loads():
    doc = copy.deepcopy(DOC)
    del doc["hazards"][0]["advice_en"]
    assert parse_taxonomy(doc).hazards[0].advice_en == ""


# --- error messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),  # an API client that says nothing keeps English
        ("", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),  # a Chinese phone's browser
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh-Hans;q=0.7", "zh"),  # q-values decide, not the order
        ("zh, en", "zh"),  # a tie goes to the first listed
        ("fr-FR, de", "en"),  # neither language: the default
        ("zh;q=0, en", "en"),  # q=0 means "not this one"
        ("zh;q=abc", "en"),  # a broken q-value counts as 0
    ],
)
def test_language_from_accept_language(header: str | None, expected: str):
    assert messages.language(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, "zh"), ("fr", "zh"), ("en-US,en;q=0.9", "en"), ("en;q=0.1, zh", "zh"), ("zh;q=0.4, en", "en")],
)
def test_the_app_defaults_to_chinese_and_still_weighs_q_values(header: str | None, expected: str):
    assert messages.language(header, default="zh") == expected


@pytest.mark.parametrize(
    ("code", "english", "chinese"),
    [
        (
            "payload_too_large",
            "a.jpg is 30,000 bytes; the limit is 20,000 bytes",
            "a.jpg 大小为 30,000 字节，超过 20,000 字节的上限",
        ),
        ("too_many_files", "17 photos sent; at most 16 per batch", "一次发送了 17 张照片，每批最多 16 张"),
        ("validation_error", "missing multipart/form-data field 'photo'", "缺少 multipart/form-data 字段“photo”"),
        ("invalid_image", "PNG data is corrupt or truncated", "PNG 数据损坏或不完整，无法解码"),
        (
            "unsupported_media_type",
            "file is a PDF document, not an image; send a JPEG, PNG, WebP or HEIC photo",
            "文件类型不受支持（a PDF document, not an image），请上传 JPEG、PNG、WebP、HEIC 格式的照片",
        ),
        (
            "forbidden",
            "key 'cam-1' lacks the scope 'detect' that /v1/detect needs (it has: events:read)",
            "密钥“cam-1”没有访问 /v1/detect 所需的权限“detect”（现有权限：events:read）",
        ),
        (
            "rate_limited",
            "key 'cam-1' may make 60/min requests; retry in 3 s",
            "密钥“cam-1”的请求频率上限为 60/min，请 3 秒后重试",
        ),
        # not in the pattern table: the code's summary, the English kept for its details
        ("unknown_class", "unknown class 'dragon'", "未知的检测类别：unknown class 'dragon'"),
        ("some_new_code", "what happened", "请求出错：what happened"),
    ],
)
def test_english_messages_in_chinese(code: str, english: str, chinese: str):
    assert messages.to_chinese(code, english) == chinese
    assert messages.localize(code, english, "zh-CN") == chinese
    assert messages.localize(code, english, "en") == english


def test_every_error_code_the_api_uses_has_a_chinese_summary():
    codes = {code for _, _, code in errors.ERROR_TABLE} | set(errors._HTTP_CODES.values()) | {"internal_error"}
    assert codes - set(messages.SUMMARY_ZH) == set()


def test_errors_over_http_follow_accept_language_and_hazards_carry_advice_en(tiny_model_dir: Path):
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as client:
        empty = {"photo": ("empty.jpg", b"", "image/jpeg")}
        en = client.post("/v1/detect", files=empty)
        zh = client.post("/v1/detect", files=empty, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        assert en.status_code == zh.status_code == 400
        assert en.json()["error"] == {"code": "invalid_image", "message": "empty file: no image data was received"}
        assert zh.json()["error"] == {"code": "invalid_image", "message": "文件为空：没有收到图片数据"}
        missing = client.get("/v1/nothing-here", headers={"Accept-Language": "zh"})
        assert missing.status_code == 404 and missing.json()["error"]["message"] == "未找到该地址"
        r = client.post("/v1/detect", files={"photo": ("fire.jpg", FIRE_PHOTO, "image/jpeg")})
        (hazard,) = r.json()["hazards"]
        assert hazard["id"] == "FIRE-001" and hazard["advice_en"].startswith("Call the fire brigade (119)")


app_server = app_fixtures.app_server  # a real service in its own process, with users (tests/app_fixtures.py)


def test_the_inspector_app_gives_advice_in_both_languages(app_server: app_fixtures.AppServer):
    client = app_server.client("inspector")
    try:
        hazards = client.get("/app/api/taxonomy").json()["hazards"]
    finally:
        client.close()
    assert len(hazards) >= 18
    assert all(h["advice_zh"] and h["advice_en"] and not CJK.search(h["advice_en"]) for h in hazards)
    assert hazard_fields(parse_taxonomy(DOC), "X-1")["advice_en"] == "Put it out."
