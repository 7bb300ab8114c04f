"""The printable notice of a report link: whom it reports to, how, and its QR code (扫码举报). Pure: text in, HTML
or SVG out; the app's documents module makes the PDF."""

from __future__ import annotations

import html

import segno

HOTLINE = "12350"  # 全国安全生产举报投诉电话

CSS = """
@page { size: A4; margin: 16mm; }
body { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; color: #111;
  text-align: center; margin: 0; }
h1 { font-size: 34pt; letter-spacing: .12em; margin: 6mm 0 2mm; color: #b3261e; }
.org { font-size: 17pt; margin: 0 0 8mm; }
.qr svg { width: 105mm; height: 105mm; }
.steps { display: flex; justify-content: center; gap: 6mm; margin: 8mm 0 6mm; font-size: 13pt; }
.steps div { border: 1.5pt solid #0b5cad; border-radius: 3mm; padding: 3mm 4mm; width: 44mm; }
.steps b { display: block; color: #0b5cad; font-size: 16pt; }
.note { font-size: 12pt; margin: 2mm 0; }
.place { font-size: 10pt; color: #555; margin-top: 8mm; }
.url { font-size: 8pt; color: #777; word-break: break-all; margin-top: 2mm; }
"""


def qr_svg(url: str) -> str:
    """The link as a QR code (error correction M: a printed notice gets scuffed), an SVG element that scales."""
    code = segno.make(url, error="m", micro=False)
    svg: str = code.svg_inline(scale=1, border=2, omitsize=True, dark="#000", light="#fff")
    return svg


def poster_html(org_name: str, link_name: str, url: str) -> str:
    e = html.escape
    steps = "".join(
        f"<div><b>{n}</b>{text}</div>"
        for n, text in (("1", "微信或相机扫码"), ("2", "拍下隐患，写明位置"), ("3", "提交，保存回执号"))
    )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>安全隐患随手拍</title>'
        f"<style>{CSS}</style></head><body>"
        "<h1>安全隐患随手拍</h1>"
        f'<p class="org">{e(org_name)}</p>'
        f'<div class="qr">{qr_svg(url)}</div>'
        f'<div class="steps">{steps}</div>'
        "<p class=note>发现火灾隐患、安全出口堵塞锁闭、楼道和电梯内停放电动自行车、违规动火、未戴安全帽等，"
        "均可扫码举报。无需注册，可匿名。</p>"
        "<p class=note>凭回执号查询处理结果；查证属实的，按规定给予奖励。"
        f"举报投诉电话 {HOTLINE}。</p>"
        f'<p class="place">{e(link_name)}</p><p class="url">{e(url)}</p>'
        "</body></html>"
    )
