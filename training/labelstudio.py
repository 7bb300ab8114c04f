"""Label Studio sync: a labelling project per round, model detections as pre-annotations, finished
annotations back as a source the importer merges into the canonical dataset.

Talks to a Label Studio server (tested with 1.23, Community edition) through ``label-studio-sdk`` 2.x::

    token = get_token("http://127.0.0.1:8080", "me@example.com", "secret")   # a Personal Access Token
    client = connect("http://127.0.0.1:8080", token)
    project = create_project(client, "site photos 2026-11", taxonomy, classes)
    push_tasks(client, project, photos, detections, model_classes, "hazardscan-v1:1.0.0")
    ...annotators label in the browser...
    pulled = pull_annotations(client, project, project_labels(client, project))
    spec = write_source(client, pulled, project_labels(client, project), Path("work/labelled/round1"), "round1")

Photos are *uploaded* to the server (multipart import, one photo per request so that every task id is
known): that works offline on loopback and with any server, with no shared disk and no local-files
storage to configure. Boxes travel in Label Studio's percent units and are converted with the original
(EXIF-upright) photo size, so a round trip is exact up to float rounding.
"""

from __future__ import annotations

import colorsys
import html
import json
import logging
import mimetypes
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from label_studio_sdk import LabelStudio, PredictionRequest

from inference_service.detections import Detections
from inference_service.taxonomy import Taxonomy
from training.dataset import yolo_lines
from training.formats.common import Issue, RawBox
from training.formats.labelstudio import parse_labelstudio_task, to_labelstudio_results
from training.importer import Sample, oriented_size

log = logging.getLogger(__name__)

FROM_NAME = "label"  # the RectangleLabels control
TO_NAME = "image"  # the Image object
DATA_KEY = "image"  # task data field holding the photo URL
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")  # Label Studio prefixes uploaded file names with 8 hex digits


class LabelStudioError(RuntimeError):
    """The server refused or answered unexpectedly; the message says what was asked and the reply."""


# --- labelling config (pure) -------------------------------------------------------------------------


def label_colours(n: int) -> list[str]:
    """``n`` distinct ``#rrggbb`` colours: golden-ratio hue steps, alternating saturation and value."""
    colours = []
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        sat, val = (0.85, 0.95) if i % 2 == 0 else (0.65, 0.75)
        r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
        colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colours


def labeling_config(taxonomy: Taxonomy, classes: Sequence[str] | None = None) -> str:
    """RectangleLabels config for the taxonomy's detector classes (all, or ``classes`` in that order);
    each label carries its Chinese name as the hover hint."""
    known = {c.name: c for c in taxonomy.detector_classes}
    names = list(classes) if classes is not None else list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"classes not in the taxonomy's detector_classes: {unknown} (see datasets/taxonomy.yaml)")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"need a non-empty list of distinct classes, got {names}")
    view = ET.Element("View")
    ET.SubElement(view, "Image", name=TO_NAME, value=f"${DATA_KEY}", zoom="true", zoomControl="true")
    rect = ET.SubElement(view, "RectangleLabels", name=FROM_NAME, toName=TO_NAME, strokeWidth="2")
    for name, colour in zip(names, label_colours(len(names)), strict=True):
        ET.SubElement(rect, "Label", value=name, hint=known[name].zh, background=colour)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def config_labels(label_config: str) -> list[str]:
    """Label values of the ``label`` RectangleLabels control, in config order."""
    root = ET.fromstring(label_config)
    for control in root.iter("RectangleLabels"):
        if control.get("name") == FROM_NAME:
            return [str(lab.get("value")) for lab in control.iter("Label")]
    raise ValueError(f"label config has no <RectangleLabels name={FROM_NAME!r}>")


# --- boxes <-> Label Studio results (pure) -----------------------------------------------------------


def detections_to_results(
    dets: Detections, class_names: Sequence[str], width: int, height: int, with_scores: bool = True
) -> list[dict[str, Any]]:
    """Pixel detections of a ``width`` x ``height`` (upright) photo -> rectangle results in percent."""
    boxes = [
        RawBox(class_names[int(c)], (x1, y1, x2, y2))
        for (x1, y1, x2, y2), c in zip(dets.xyxy.tolist(), dets.class_id.tolist(), strict=True)
    ]
    scores = dets.score.tolist() if with_scores else None
    return to_labelstudio_results(boxes, width, height, FROM_NAME, TO_NAME, scores)


@dataclass
class PulledAnnotation:
    task_id: int
    name: str  # the photo's file name as it was uploaded
    image_url: str  # as the task data holds it (relative to the server for uploads)
    size: tuple[int, int] | None  # (width, height) the annotator saw; None for an empty annotation
    labels: Detections  # pixels of that size; class ids index the class list given to the parser
    issues: list[Issue] = field(default_factory=list)


def _photo_name(task: dict[str, Any]) -> str:
    upload = task.get("file_upload")
    if upload:
        return _UPLOAD_PREFIX.sub("", Path(str(upload)).name)
    url = str(task.get("data", {}).get(DATA_KEY, ""))
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name or f"task-{task.get('id')}"


def parse_export(tasks: list[dict[str, Any]], class_names: Sequence[str]) -> list[PulledAnnotation]:
    """Tasks of a JSON export -> the latest finished annotation of each, labels mapped to class ids.

    Tasks whose annotations were all skipped (cancelled) are left out; labels outside ``class_names``
    are dropped and reported as ``unknown_label`` issues.
    """
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for task in tasks:
        if not any(not a.get("was_cancelled") for a in task.get("annotations", [])):
            continue
        parsed, size = parse_labelstudio_task(task)
        issues = list(parsed.issues)
        rows = []
        for b in parsed.boxes:
            if b.name not in index:
                issues.append(Issue("unknown_label", f"label {b.name!r} is not one of {list(class_names)}", "dropped"))
                continue
            rows.append((*b.xyxy, index[b.name], 1.0))
        url = str(task.get("data", {}).get(DATA_KEY, ""))
        out.append(PulledAnnotation(int(task["id"]), _photo_name(task), url, size, Detections.from_rows(rows), issues))
    return out


def source_spec(
    name: str, root: str, class_names: Sequence[str], origin: str = "", licence: str = "own photos"
) -> dict[str, Any]:
    """A ``datasets/sources``-style spec for a folder written by :func:`write_source`."""
    return {
        "name": name,
        "origin": origin,
        "licence": licence,
        "format": "yolo",
        "root": root,
        "images": ["images/*"],
        "labels": {"replace": ["/images/", "/labels/"], "suffix": ".txt"},
        "names": list(class_names),
        "missing_label": "drop",
        "class_map": {c: c for c in class_names},
    }


# --- server access (thin shells) ---------------------------------------------------------------------


def _form_post(web: httpx.Client, page: str, fields: dict[str, str]) -> httpx.Response:
    """GET a Django form page (sets the CSRF cookie), then POST it the way the browser does."""
    web.get(page).raise_for_status()
    csrf = web.cookies.get("csrftoken") or ""
    return web.post(page, data={"csrfmiddlewaretoken": csrf, **fields}, headers={"Referer": str(web.base_url) + page})


def _form_errors(page: str) -> str:
    """The error texts a refused Django form shows, for the exception message."""
    found = re.findall(r'class="[^"]*error[^"]*"[^>]*>\s*(?:<li>)?([^<]{3,200})', page)
    return "; ".join(dict.fromkeys(html.unescape(e.strip()) for e in found if e.strip())) or "no reason shown"


def get_token(
    url: str,
    email: str,
    password: str,
    *,
    sign_up: bool = True,
    revoke_existing: bool = False,
    timeout: float = 30.0,
) -> str:
    """A Personal Access Token obtained the way a user does it in the browser.

    Logs in through the web form (CSRF cookie + form POST), or signs up when the login fails and
    ``sign_up`` is set, then creates a token through ``/api/token/`` as the "Personal Access Token"
    page does. Label Studio keeps one token per user: with ``revoke_existing`` an existing one is
    revoked first (as the page's "Revoke" button does), else that is an error.
    """
    base = url.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout, follow_redirects=False) as web:
        login = _form_post(web, "/user/login/", {"email": email, "password": password})
        if login.status_code != 302:
            if not sign_up:
                raise LabelStudioError(f"login of {email} at {base} failed: {_form_errors(login.text)}")
            signup = _form_post(web, "/user/signup/", {"email": email, "password": password})
            if signup.status_code != 302:
                raise LabelStudioError(f"login and sign-up of {email} at {base} failed: {_form_errors(signup.text)}")
        api = {"X-CSRFToken": web.cookies.get("csrftoken") or "", "Referer": base + "/"}
        created = web.post("/api/token/", headers=api)
        if created.status_code == 409 and revoke_existing:
            for old in web.get("/api/token/", headers=api).raise_for_status().json():
                web.post("/api/token/blacklist/", json={"refresh": old["token"]}, headers=api).raise_for_status()
            created = web.post("/api/token/", headers=api)
        if created.status_code == 409:
            raise LabelStudioError(
                f"{email} already has a Personal Access Token at {base}: pass it instead, "
                "or revoke it (Account & Settings > Personal Access Token, or revoke_existing=True)"
            )
        if created.status_code != 201:
            raise LabelStudioError(f"creating a token at {base}: HTTP {created.status_code} {created.text[:300]}")
        token: str = created.json()["token"]
        return token


def connect(url: str, token: str, timeout: float = 60.0) -> LabelStudio:
    """SDK client. A Personal Access Token is a JWT refresh token: the SDK exchanges it at
    ``api/token/refresh/`` for short-lived access tokens and again when one expires. The trailing
    slash keeps that exchange right for a server under a sub-path (the SDK joins it with urljoin)."""
    return LabelStudio(base_url=url.rstrip("/") + "/", api_key=token, timeout=timeout)


def _http(client: LabelStudio, path: str, method: str = "GET", **kwargs: Any) -> httpx.Response:
    """A request through the SDK's authenticated HTTP client, for endpoints the SDK does not wrap."""
    response = client._client_wrapper.httpx_client.request(path.lstrip("/"), method=method, **kwargs)
    if response.status_code >= 400:
        raise LabelStudioError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
    return response


def create_project(
    client: LabelStudio, title: str, taxonomy: Taxonomy, classes: Sequence[str] | None = None, description: str = ""
) -> int:
    """A new project labelling the given detector classes; returns its id."""
    project = client.projects.create(
        title=title,
        description=description or f"hazardscan taxonomy {taxonomy.version}",
        label_config=labeling_config(taxonomy, classes),
    )
    if project.id is None:
        raise LabelStudioError(f"project {title!r} was created without an id")
    log.info("created Label Studio project %d %r", project.id, title)
    return int(project.id)


def project_labels(client: LabelStudio, project: int) -> list[str]:
    return config_labels(client.projects.get(id=project).label_config or "")


def upload_photo(client: LabelStudio, project: int, path: Path) -> int:
    """Upload one photo as a new task; returns the task id."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    with path.open("rb") as f:
        response = _http(
            client,
            f"api/projects/{project}/import",
            "POST",
            params={"return_task_ids": "true"},
            files={"file": (path.name, f, mime)},
        )
    task_ids = response.json().get("task_ids") or []
    if len(task_ids) != 1:
        raise LabelStudioError(f"uploading {path.name} to project {project} made tasks {task_ids}, expected one")
    return int(task_ids[0])


def push_tasks(
    client: LabelStudio,
    project: int,
    images: Sequence[Path],
    predictions: Sequence[Detections] | None = None,
    class_names: Sequence[str] = (),
    model_version: str = "",
) -> list[int]:
    """Upload photos as tasks, with ``predictions[i]`` (pixel boxes, ids into ``class_names``) of
    ``images[i]`` as pre-annotations; returns the task ids in ``images`` order.

    A prediction's score is its least confident box, so "prediction-score-min" sampling shows the most
    doubtful photos first. Classes the project does not label are left out (logged).
    """
    if predictions is not None and len(predictions) != len(images):
        raise ValueError(f"{len(predictions)} predictions for {len(images)} images")
    labels = set(project_labels(client, project)) if predictions is not None else set()
    task_ids, requests = [], []
    for i, path in enumerate(images):
        task_id = upload_photo(client, project, path)
        task_ids.append(task_id)
        if predictions is None:
            continue
        dets = predictions[i]
        keep = [class_names[int(c)] in labels for c in dets.class_id.tolist()]
        if not all(keep):
            log.warning("%s: %d boxes of classes the project does not label left out", path.name, keep.count(False))
            dets = dets[[j for j, k in enumerate(keep) if k]]
        width, height = oriented_size(path)
        results = detections_to_results(dets, class_names, width, height)
        score = float(dets.score.min()) if len(dets) else None
        requests.append(PredictionRequest(task=task_id, result=results, score=score, model_version=model_version))
    if requests:
        client.projects.import_predictions(id=project, request=requests)
    log.info("pushed %d photos (%d with predictions) to project %d", len(task_ids), len(requests), project)
    return task_ids


def export_tasks(client: LabelStudio, project: int) -> list[dict[str, Any]]:
    """JSON export of the annotated tasks (the synchronous export of the Community edition)."""
    raw = b"".join(client.projects.exports.download_sync(project, export_type="JSON", download_all_tasks=False))
    tasks: list[dict[str, Any]] = json.loads(raw)
    return tasks


def pull_annotations(client: LabelStudio, project: int, class_names: Sequence[str]) -> list[PulledAnnotation]:
    """Finished annotations of a project; see :func:`parse_export`."""
    pulled = parse_export(export_tasks(client, project), class_names)
    n_issues = sum(len(p.issues) for p in pulled)
    log.info("pulled %d annotated photos from project %d (%d issues)", len(pulled), project, n_issues)
    return pulled


def write_source(
    client: LabelStudio,
    pulled: Sequence[PulledAnnotation],
    class_names: Sequence[str],
    out_dir: Path,
    name: str,
    origin: str = "",
    datasets_root: Path | None = None,
) -> dict[str, Any]:
    """Download the photos and write ``images/``, YOLO ``labels/`` and ``source.yaml`` (also returned).

    Photos are named ``<task id>-<uploaded name>``. ``root`` in the spec is relative to
    ``datasets_root`` when ``out_dir`` lies under it, else absolute. Photo and label issues go to
    ``issues.jsonl``; a photo whose size differs from the one annotated has its boxes rescaled.
    """
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    issue_lines = []
    for p in pulled:
        image = out_dir / "images" / f"{p.task_id}-{p.name}"
        image.write_bytes(_http(client, p.image_url).content)
        width, height = oriented_size(image)
        labels, issues = p.labels, list(p.issues)
        if p.size is not None and p.size != (width, height):
            labels = labels.scaled(width / p.size[0], height / p.size[1])
            issues.append(Issue("size_mismatch", f"annotated at {p.size}, photo is {(width, height)}", "changed"))
        sample = Sample(image, name, width, height, labels, "")
        (out_dir / "labels" / f"{image.stem}.txt").write_text(yolo_lines(sample), encoding="utf-8")
        issue_lines += [
            json.dumps(
                {"image": image.name, "code": i.code, "detail": i.detail, "action": i.action}, ensure_ascii=False
            )
            for i in issues
        ]
    (out_dir / "issues.jsonl").write_text("".join(line + "\n" for line in issue_lines), encoding="utf-8")
    out = out_dir.resolve()
    root = str(out)
    if datasets_root is not None and out.is_relative_to(datasets_root.resolve()):
        root = str(out.relative_to(datasets_root.resolve()))
    spec = source_spec(name, root, class_names, origin)
    (out_dir / "source.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    log.info("wrote %d labelled photos to %s (%d issues)", len(pulled), out_dir, len(issue_lines))
    return spec
