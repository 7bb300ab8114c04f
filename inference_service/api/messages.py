"""Error messages in 中文 and English, chosen by the request's ``Accept-Language``.

Messages are written in English where they are raised (they name the figures: sizes, limits, field
names). This module turns them into Chinese for a client that prefers it:

- a table of patterns translates the frequent messages in full, figures included;
- any other message gets the Chinese summary of its error code, followed by the English text.

English stays the default: an API client that sends no ``Accept-Language`` gets what it got before.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["zh", "en"]

# One line per error code: what went wrong, in Chinese. Unknown codes fall back to the generic line.
SUMMARY_ZH: dict[str, str] = {
    "bad_request": "请求有误",
    "unsupported_media_type": "不支持的文件类型",
    "invalid_image": "图片无法读取",
    "image_too_large": "图片过大",
    "image_too_small": "图片过小",
    "payload_too_large": "上传内容过大",
    "too_many_files": "一次上传的文件过多",
    "batch_too_large": "一次上传的照片解码所需内存过大，请分批上传",
    "validation_error": "请求参数有误",
    "unknown_class": "未知的检测类别",
    "unknown_scene": "未知的场景",
    "unauthorized": "需要登录或 API 密钥",
    "forbidden": "没有执行此操作的权限",
    "not_found": "未找到",
    "method_not_allowed": "不支持该请求方法",
    "conflict": "操作与当前状态冲突",
    "rate_limited": "请求过于频繁",
    "too_many_requests": "请求过于频繁",
    "server_busy": "服务器繁忙",
    "request_timeout": "请求超时",
    "client_closed_request": "客户端已断开连接",
    "model_not_ready": "模型尚未就绪",
    "service_unavailable": "服务暂不可用",
    "storage_unavailable": "数据库暂不可用",
    "insufficient_storage": "服务器存储空间已满",
    "internal_error": "服务器内部错误",
}
GENERIC_ZH = "请求出错"

_N = r"[\d,.]+"
# (English message pattern, Chinese template). Named groups carry the figures across.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), template)
    for pattern, template in (
        (
            rf"(?P<name>.+) is (?P<size>{_N}) bytes; the limit is (?P<limit>{_N}) bytes",
            "{name} 大小为 {size} 字节，超过 {limit} 字节的上限",
        ),
        (
            rf"request body is larger than the (?P<limit>{_N})-byte limit for (?P<path>\S+)",
            "请求内容超过 {path} 的 {limit} 字节上限",
        ),
        (rf"(?P<name>.+) is larger than the (?P<limit>{_N})-byte limit", "{name} 超过 {limit} 字节的上限"),
        (r"(?P<n>\d+) photos sent; at most (?P<max>\d+) per batch", "一次发送了 {n} 张照片，每批最多 {max} 张"),
        (r"empty file: no image data was received", "文件为空：没有收到图片数据"),
        (
            r"the server's disk is full, so nothing was stored; send it again later",
            "服务器存储空间已满，本次未保存任何内容，请稍后重新发送",
        ),
        (
            rf"image is (?P<w>\d+)×(?P<h>\d+) = (?P<mp>{_N}) megapixels; the limit is (?P<lim>{_N}) megapixels",
            "图片为 {w}×{h}（{mp} 百万像素），超过 {lim} 百万像素的上限",
        ),
        (rf"image declares too many pixels; the limit is (?P<lim>{_N})", "图片声明的像素数过多，上限为 {lim} 像素"),
        (
            r"image is (?P<w>\d+)×(?P<h>\d+) pixels; photos need at least (?P<min>\d+) pixels on each side.*",
            "图片只有 {w}×{h} 像素，照片每边至少需要 {min} 像素，请拍摄或上传原图",
        ),
        (
            r"file is (?P<kind>.+); send a (?P<formats>.+) photo",
            "文件类型不受支持（{kind}），请上传 {formats} 格式的照片",
        ),
        (
            r"JPEG data is truncated: the upload was cut short; send the whole photo",
            "JPEG 数据不完整：上传中断，请重新上传完整照片",
        ),
        (r"(?P<fmt>\w+) data is corrupt or truncated.*", "{fmt} 数据损坏或不完整，无法解码"),
        (
            r"file starts like a (?P<fmt>.+) but its header is corrupt or truncated",
            "文件像是 {fmt}，但文件头损坏或不完整",
        ),
        (r"cannot read the image header: the file is damaged", "无法读取图片文件头：文件已损坏"),
        (r"missing multipart/form-data field '(?P<field>[^']+)'", "缺少 multipart/form-data 字段“{field}”"),
        (r"the database is not available; retry later", "数据库暂不可用，请稍后重试"),
        (
            r"the server is decoding other large photos; retry in a few seconds.*",
            "服务器正在解码其他大尺寸照片，请几秒后重试",
        ),
        (
            r"the server is busy \((?P<n>\d+) photos running or queued\); retry in (?P<s>\d+) s",
            "服务器繁忙（{n} 张照片正在识别或排队），请 {s} 秒后重试",
        ),
        (r"the request body stalled for more than (?P<s>[\d.]+) s", "请求内容超过 {s} 秒没有传输，已中断"),
        (r"the client disconnected before its photo was scanned", "客户端在照片识别之前断开了连接"),
        (r"the model is not ready: (?P<why>.*)", "模型尚未就绪：{why}"),
        (
            r"(?P<path>\S+) needs an API key; send it as .*",
            "{path} 需要 API 密钥，请在请求头中以“Authorization: Bearer <密钥>”发送（密钥由运维人员用 hazardscan keys "
            "create 创建）",
        ),
        (r"unknown or revoked API key", "API 密钥无效或已被吊销"),
        (
            r"key '(?P<name>[^']+)' lacks the scope '(?P<need>[^']+)' that (?P<path>\S+) needs "
            r"\(it has: (?P<has>[^)]*)\)",
            "密钥“{name}”没有访问 {path} 所需的权限“{need}”（现有权限：{has}）",
        ),
        (
            r"key '(?P<name>[^']+)' may make (?P<rate>.+) requests; retry in (?P<s>\d+) s",
            "密钥“{name}”的请求频率上限为 {rate}，请 {s} 秒后重试",
        ),
        (r"no event (?P<id>\d+)", "没有编号为 {id} 的事件"),
        (r"no evidence for event (?P<id>\d+)", "事件 {id} 没有证据图片"),
        (r"Not Found", "未找到该地址"),
        (r"Method Not Allowed", "不支持该请求方法"),
        (r"internal error; the incident was logged", "服务器内部错误，已记录日志"),
    )
)


def language(accept_language: str | None, default: Language = "en") -> Language:
    """``"zh"`` when the client ranks Chinese above English, ``"en"`` when it ranks English above Chinese, else
    ``default`` (English for the API; the inspector app passes ``"zh"``).

    Reads RFC 9110 language ranges with q-values: ``zh-CN,zh;q=0.9,en;q=0.8`` is Chinese,
    ``en-US,en;q=0.9,zh;q=0.5`` English. Ties go to the range listed first.
    """
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("zh", "en"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        lang: Language = "zh" if primary == "zh" else "en"
        candidate = (q, -position, lang)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else default


def to_chinese(code: str, message: str) -> str:
    """The Chinese form of an English error message: a full translation where a pattern knows it,
    else the code's summary with the English text kept for its details."""
    for pattern, template in PATTERNS:
        match = pattern.fullmatch(message.strip())
        if match:
            groups = match.groupdict()
            if "formats" in groups:  # "JPEG, PNG, WebP or HEIC" -> "JPEG、PNG、WebP、HEIC"
                groups["formats"] = re.sub(r",? or |, ", "、", groups["formats"])
            return template.format(**groups)
    summary = SUMMARY_ZH.get(code, GENERIC_ZH)
    return f"{summary}：{message}" if message else summary


def localize(code: str, message: str, accept_language: str | None) -> str:
    """The message in the language the client asked for (English unless it prefers Chinese)."""
    return to_chinese(code, message) if language(accept_language) == "zh" else message
