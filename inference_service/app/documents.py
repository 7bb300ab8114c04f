"""Printable documents of an inspection: 现场检查记录 (on-site inspection record) and 隐患整改通知书
(rectification notice), as print-ready HTML (A4, a page per photo) and as PDF through WeasyPrint with the
project's CJK font. Pure: :func:`render` takes the prepared data and returns HTML."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Literal

Kind = Literal["record", "notice"]
TITLES = {"record": "现场检查记录", "notice": "隐患整改通知书"}
SEVERITY_ZH = {"critical": "重大", "high": "较大", "medium": "一般", "low": "较小"}
STATUS_ZH = {"pending": "待确认", "confirmed": "已确认", "rejected": "误报"}


@dataclass(frozen=True)
class DocHazard:
    name_zh: str
    name_en: str
    severity: str
    status: str  # pending | confirmed | rejected
    source: str  # model | inspector
    confidence: float | None
    legal_basis: str
    advice_zh: str
    note: str
    deadline: str | None  # local date-time text, for confirmed hazards with a ledger item
    responsible_person: str = ""
    suspected: bool = False  # 疑似: a rule that only suspects it raised it (or the model was under 0.5 sure)
    unconfirmed: bool = False  # found on a photo with a warning (washed out, too dark, featureless)

    @property
    def status_zh(self) -> str:
        """确认情况: a pending suspicion or a finding of a doubtful photo says why it waits for the inspector."""
        if self.status == "pending" and (self.suspected or self.unconfirmed):
            why = "、".join(w for w, on in (("疑似隐患", self.suspected), ("照片存疑", self.unconfirmed)) if on)
            return f"{why}，待检查员确认"
        return STATUS_ZH.get(self.status, self.status)


@dataclass(frozen=True)
class DocPhoto:
    index: int
    jpeg: bytes  # the photo with boxes drawn
    sha256: str
    width: int
    height: int
    taken_at: str | None
    model: str
    hazards: Sequence[DocHazard]
    from_camera: bool = False  # a CCTV frame: taken_at is the camera's time


@dataclass(frozen=True)
class DocInspection:
    number: str
    unit_name: str
    unit_address: str
    unit_credit_code: str | None
    scene: str
    inspector: str
    org: str
    created_at: str  # local date-time text
    location: str | None
    photos: Sequence[DocPhoto] = field(default_factory=tuple)
    camera_event: str | None = None  # made from this CCTV event
    back_url: str = ""  # the inspection in the app (the screen's 返回)
    pdf_url: str = ""  # the same document as PDF (the screen's 打印 / PDF)


CSS = """
@page { size: A4; margin: 16mm 15mm 18mm 15mm;
        @bottom-center { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font-size: 9pt; color: #555; } }
* { box-sizing: border-box; }
body { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; font-size: 10.5pt;
       color: #111; margin: 0; line-height: 1.5; }
.page { page-break-after: always; break-after: page; }
.page:last-child { page-break-after: auto; break-after: auto; }
h1 { text-align: center; font-size: 20pt; letter-spacing: 0.3em; margin: 0 0 4mm; }
h2 { font-size: 12.5pt; margin: 4mm 0 2mm; border-left: 4px solid #b22; padding-left: 2mm; }
.no { text-align: right; color: #444; margin-bottom: 3mm; }
table { width: 100%; border-collapse: collapse; margin: 2mm 0; }
th, td { border: 1px solid #444; padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
th { background: #f1f1f1; white-space: nowrap; width: 1%; }
.photo { width: 100%; max-height: 115mm; object-fit: contain; border: 1px solid #999; display: block; margin: 0 auto; }
.meta { font-size: 8.5pt; color: #555; word-break: break-all; }
.en { font-size: 8.5pt; color: #555; }
.sev-critical { color: #b00; font-weight: bold; } .sev-high { color: #c50; font-weight: bold; }
.sev-medium { color: #960; } .sev-low { color: #15c; }
.sign { margin-top: 10mm; display: flex; justify-content: space-between; gap: 8mm; }
.sign div { flex: 1; border-top: 1px solid #111; padding-top: 1.5mm; text-align: center; min-height: 16mm; }
.lead { text-indent: 2em; }
td { overflow-wrap: break-word; }
.bar { display: none; }
@media screen { body { max-width: 210mm; margin: 0 auto; padding: 10mm; background: #eee; }
  .page { background: #fff; padding: 12mm; margin-bottom: 8mm; box-shadow: 0 1px 4px #0003; overflow-x: auto; }
  .bar { display: flex; gap: 3mm; justify-content: flex-end; margin-bottom: 4mm; }
  .bar a { padding: 2.5mm 4mm; border-radius: 2mm; background: #1d4ed8; color: #fff; text-decoration: none; }
  .bar a.back { background: #fff; color: #1d4ed8; border: 1px solid #1d4ed8; margin-right: auto; } }
@media screen and (max-width: 600px) { body { padding: 2mm; font-size: 10pt; }
  .page { padding: 4mm; margin-bottom: 4mm; } h1 { font-size: 15pt; letter-spacing: 0.05em; } }
"""


def _e(text: object) -> str:
    return escape(str(text or ""), quote=True)


def _sev(severity: str) -> str:
    return f'<span class="sev-{_e(severity)}">{_e(SEVERITY_ZH.get(severity, severity))}</span>'


def _head(doc: DocInspection) -> str:
    rows = [
        ("被检查单位", doc.unit_name),
        ("地址", doc.unit_address),
        ("统一社会信用代码", doc.unit_credit_code or "—"),
        ("检查场景", doc.scene),
        ("检查时间", doc.created_at),
        ("检查人员", f"{doc.inspector}（{doc.org}）"),
    ]
    if doc.location:
        rows.append(("检查位置", doc.location))
    if doc.camera_event:
        rows.append(("发现方式", f"监控告警（事件 {doc.camera_event}）"))
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _summary(doc: DocInspection, kind: Kind) -> str:
    cells = []
    n = 0
    for p in doc.photos:
        for h in p.hazards:
            n += 1
            last = h.deadline or "—" if kind == "notice" else h.status_zh
            cells.append(
                f"<tr><td>{n}</td><td>{_e(h.name_zh)}<div class='en'>{_e(h.name_en)}</div></td>"
                f"<td>{_sev(h.severity)}</td><td>照片 {p.index}</td><td>{_e(last)}</td></tr>"
            )
    if not cells:
        return "<p>本次检查未发现隐患。</p>" if kind == "record" else "<p>无需整改的隐患。</p>"
    last_head = "整改期限" if kind == "notice" else "确认情况"
    doubtful = any(h.status == "pending" and (h.suspected or h.unconfirmed) for p in doc.photos for h in p.hazards)
    note = (
        '<p class="meta">“疑似隐患”“照片存疑”的条目尚未经检查员确认，不作为已确认隐患，不进入隐患台账；'
        "照片上以虚线框标出。</p>"
        if doubtful
        else ""
    )
    return (
        f"<table><tr><th>序号</th><th>隐患</th><th>等级</th><th>照片</th><th>{last_head}</th></tr>"
        + "".join(cells)
        + "</table>"
        + note
    )


def _signatures(kind: Kind) -> str:
    names: tuple[str, ...]
    if kind == "record":
        names = ("检查人员（签名）", "被检查单位负责人（签名）", "日期")
    else:
        names = ("检查单位（盖章）", "检查人员（签名）", "被检查单位签收人（签名）", "签收日期")
    return '<div class="sign">' + "".join(f"<div>{_e(n)}</div>" for n in names) + "</div>"


def _photo_page(p: DocPhoto, kind: Kind) -> str:
    src = "data:image/jpeg;base64," + base64.b64encode(p.jpeg).decode()
    items = []
    for i, h in enumerate(p.hazards, start=1):
        origin = (
            "检查员添加" if h.source == "inspector" else f"AI 识别 {h.confidence:.0%}" if h.confidence else "AI 识别"
        )
        rows = [
            ("隐患", f"{_e(h.name_zh)}（{_e(h.name_en)}）"),
            ("等级", _sev(h.severity)),
            ("来源", _e(origin) + ("" if kind == "notice" else f"，{_e(h.status_zh)}")),
            ("依据", _e(h.legal_basis)),
            ("整改建议", _e(h.advice_zh)),
        ]
        if h.note:
            rows.append(("检查员备注", _e(h.note)))
        if h.deadline:
            rows.append(("整改期限", _e(h.deadline)))
        if h.responsible_person:
            rows.append(("责任人", _e(h.responsible_person)))
        items.append(
            f"<h2>隐患 {i}</h2><table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
        )
    body = "".join(items) or "<p>此照片未发现隐患。</p>"
    taken = f"，{'监控画面' if p.from_camera else '拍摄'} {p.taken_at.replace('T', ' ')[:16]}" if p.taken_at else ""
    return (
        f'<section class="page"><h2>照片 {p.index}</h2>'
        f'<img class="photo" src="{src}" alt="照片 {p.index}">'
        f'<div class="meta">{p.width}×{p.height}{_e(taken)}，SHA-256 {_e(p.sha256)}，模型 {_e(p.model)}</div>'
        f"{body}</section>"
    )


def render(doc: DocInspection, kind: Kind) -> str:
    """The whole document: a first page (unit, summary, signatures), then a page per photo."""
    title = TITLES[kind]
    if kind == "notice":
        lead = (
            f'<p class="lead">{_e(doc.unit_name)}：经 {_e(doc.created_at)} 现场检查，你单位存在下列安全生产事故隐患。'
            "依据《中华人民共和国安全生产法》等有关规定，现责令你单位在下列期限内整改完毕，并将整改情况及整改后照片"
            "报送检查单位复查。重大事故隐患须立即整改，整改前或整改中无法保证安全的，应当从危险区域内撤出作业人员，"
            "暂时停产停业或者停止使用相关设施、设备。</p>"
        )
    else:
        lead = f'<p class="lead">共检查照片 {len(doc.photos)} 张。</p>'
    first = (
        f'<section class="page"><h1>{title}</h1><div class="no">编号：{_e(doc.number)}</div>'
        f"{_head(doc)}{lead}<h2>隐患汇总</h2>{_summary(doc, kind)}{_signatures(kind)}</section>"
    )
    pages = "".join(_photo_page(p, kind) for p in doc.photos)
    links = [(doc.back_url, "back", "返回检查"), (doc.pdf_url, "", "打印 / PDF")]
    bar = "".join(f'<a class="{cls}" href="{_e(url)}">{text}</a>' for url, cls, text in links if url)
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title} {_e(doc.number)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<style>{CSS}</style></head>"
        f"<body>{f'<nav class=bar>{bar}</nav>' if bar else ''}{first}{pages}</body></html>"
    )


def to_pdf(html: str, font_path: Path | None = None) -> bytes:
    """PDF bytes through WeasyPrint (pango; fonts through fontconfig, e.g. fonts-wqy-microhei)."""
    from weasyprint import CSS as WeasyCSS
    from weasyprint import HTML

    sheets = []
    if font_path is not None and font_path.is_file():
        sheets.append(
            WeasyCSS(string=f'@font-face {{ font-family: "WenQuanYi Micro Hei"; src: url("{font_path.as_uri()}"); }}')
        )
    pdf: bytes = HTML(string=html).write_pdf(stylesheets=sheets)
    return pdf
