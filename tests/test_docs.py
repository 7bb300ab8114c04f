"""The documentation cannot rot: every internal link of README.md and docs/**/*.md resolves (files and
``#anchors``), the generated sections equal what their generator writes today, and every command block
marked runnable (``<!-- runnable -->`` on the line before a fenced ``bash`` or ``python`` block; see
docs/README.md) runs against a real service started here, with the shipped default model."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit

import pytest
from _live import LiveServer
from markdown_it import MarkdownIt
from markdown_it.token import Token

from inference_service.api.keys import open_key_store
from inference_service.api.settings import Settings
from inference_service.cctv.api import get_cctv_settings

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
DOC_URL = "http://127.0.0.1:8000"  # the address the docs use; replaced by the test server's
RUNNABLE = "<!-- runnable -->"
LANGUAGES = ("bash", "python")
BLOCK_TIMEOUT_S = 180
MD = MarkdownIt("commonmark").enable("table")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the fence
    language: str
    code: str


def _tokens(page: Path, text: str | None = None) -> list[Token]:
    return MD.parse(page.read_text(encoding="utf-8") if text is None else text)


def _flat(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _flat(token.children)


# --- anchors and links --------------------------------------------------------------------------------


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (letters of any script, digits, ``_`` and
    ``-`` kept), spaces turned into hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path, text: str | None = None) -> set[str]:
    out: set[str] = set()
    seen: dict[str, int] = {}
    tokens = _tokens(page, text)
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        text = "".join(c.content for c in tokens[i + 1].children or [] if c.type in ("text", "code_inline"))
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    for token in _flat(tokens):  # explicit <a id="..."> / <a name="..."> anchors
        if token.type in ("html_inline", "html_block"):
            out.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", token.content))
    return out


def links(page: Path, text: str | None = None) -> Iterator[str]:
    for token in _flat(_tokens(page, text)):
        if token.type == "link_open":
            yield str(token.attrs.get("href", ""))
        elif token.type == "image":
            yield str(token.attrs.get("src", ""))
        elif token.type in ("html_inline", "html_block"):
            yield from re.findall(r"(?:href|src)=\"([^\"]+)\"", token.content)


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """Links of ``page`` (or of ``text`` read as if it were that page) that lead nowhere."""
    problems = []
    for target in links(page, text):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # http(s), mailto: not checked here (offline)
        if parts.path.startswith("/"):
            problems.append(f"{target}: a site path, not a file; link the file relative to the page")
            continue
        fragment = unquote(parts.fragment)
        if not parts.path:
            if fragment not in anchors(page, text):
                problems.append(f"{target}: no heading #{fragment} on this page")
            continue
        dest = (page.parent / unquote(parts.path)).resolve()
        if not dest.exists():
            problems.append(f"{target}: no such file {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest}")
            continue
        if not dest.is_relative_to(REPO):
            problems.append(f"{target}: outside the repository")
            continue
        if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            problems.append(f"{target}: no heading #{fragment} in {_rel(dest)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_internal_links_resolve(page: Path):
    assert broken_links(page) == []


def test_the_link_checker_sees_broken_links():
    """The checker itself: a page with two good and four bad links reports exactly the four."""
    text = (
        "# Models\n\n## Summary, with `code`\n\n"
        "[ok](#summary-with-code) [ok](architecture.md#data-flow) [bad](#nowhere) [bad](no-such-file.md)\n"
        "[bad](architecture.md#no-such-heading) [bad](/app/)\n"
    )
    problems = broken_links(REPO / "docs" / "probe.md", text)
    bad = ["#nowhere", "no-such-file.md", "architecture.md#no-such-heading", "/app/"]
    assert [p.split(":")[0] for p in problems] == bad


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("hazardscan-v5 5.0.0 (the default)", "hazardscan-v5-500-the-default"),
        ("Federated class loss, controlled A/B", "federated-class-loss-controlled-ab"),
        ("一、拍照识别隐患", "一拍照识别隐患"),
        ("API keys and `/v1/detect`", "api-keys-and-v1detect"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str):
    assert slug(heading) == anchor


# --- generated sections -------------------------------------------------------------------------------


def _docs_gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_gen", REPO / "scripts" / "docs_gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_sections_are_up_to_date():
    """README's model section and the settings reference come from the model card, the taxonomy and the
    settings classes; run `python scripts/docs_gen.py` after changing any of them."""
    gen = _docs_gen()
    stale = gen.stale_sections()
    assert stale == [], f"out of date: {stale}; run `.venv/bin/python scripts/docs_gen.py`"


# --- runnable blocks ----------------------------------------------------------------------------------


def runnable_blocks(page: Path) -> list[Block]:
    tokens = _tokens(page)
    blocks = []
    for i, token in enumerate(tokens):
        if token.type == "html_block" and token.content.strip() == RUNNABLE:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            language = nxt.info.split()[0] if nxt is not None and nxt.type == "fence" and nxt.info else ""
            line = (token.map or [0])[0] + 1
            assert nxt is not None and language in LANGUAGES, (
                f"{_rel(page)}:{line}: {RUNNABLE} must stand right before a ```bash or ```python block"
            )
            blocks.append(Block(page, (nxt.map or [0])[0] + 1, language, nxt.content))
    return blocks


RUNNABLE_PAGES = [p for p in PAGES if runnable_blocks(p)]


@pytest.fixture
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh service for each page (its own data folder, users and keys) with the shipped default model,
    closed as `make serve` starts it (every /v1 route needs an API key), and the environment the blocks run
    in: ``API_KEY`` holds a key made with the service's own key store, as the docs tell a reader to make one."""
    root = tmp_path_factory.mktemp("docs-service")
    env = {  # CCTV events in the service database, as by default: `hazardscan scan` writes where it reads
        "HAZARDSCAN_MODEL_PATH": str(REPO / "models" / "default"),
        "HAZARDSCAN_DATA_DIR": str(root / "data"),
        "HAZARDSCAN_THREADS": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("HAZARDSCAN_EVENTS_DB", raising=False)
        get_cctv_settings.cache_clear()
        settings = Settings(model_path=REPO / "models" / "default", threads=1, data_dir=root / "data")
        with LiveServer(settings, open_v1=False) as client:
            store = open_key_store(settings.resolved_database_url())
            _, key = store.create("docs", "detect,events:read")
            store.db.close()
            yield {**env, "API_KEY": key, "url": str(client.base_url).rstrip("/")}
    get_cctv_settings.cache_clear()


def _scratch(tmp_path: Path) -> Path:
    """A stand-in for the repository root: models/, datasets/ and the virtual environment (.venv, the one
    running the tests) linked, everything else written fresh."""
    for name in ("models", "datasets"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / ".curlrc").write_text("fail-with-body\nsilent\nshow-error\n", encoding="utf-8")  # HTTP >= 400 fails
    return tmp_path


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=_rel)
def test_runnable_blocks_run(page: Path, service: dict[str, str], tmp_path: Path):
    """Each page's runnable blocks, in order, in one scratch folder (a reader follows a page top to bottom)."""
    cwd = _scratch(tmp_path)
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        **{k: v for k, v in service.items() if k != "url"},
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(cwd),
        "PYTHONPATH": str(REPO),
    }
    for block in runnable_blocks(page):
        code = block.code.replace(DOC_URL, service["url"]).replace("http://localhost:8000", service["url"])
        shell = ["bash", "-euo", "pipefail", "-c"] if block.language == "bash" else [sys.executable, "-c"]
        command = [*shell, code]
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        assert done.returncode == 0, (
            f"{_rel(page)}:{block.line} exited {done.returncode}\n--- block\n{block.code}"
            f"--- stdout (tail)\n{done.stdout[-2000:]}\n--- stderr (tail)\n{done.stderr[-2000:]}"
        )


def test_pages_with_runnable_blocks_are_found():
    """Guards the marker's spelling: the pages that carry examples are seen as carrying them."""
    names = {_rel(p) for p in RUNNABLE_PAGES}
    assert {"README.md", "docs/api.md", "docs/cctv.md", "docs/ml.md", "docs/operations.md"} <= names
    assert shutil.which("curl"), "the runnable examples need curl (scripts/setup.sh installs it)"


def test_the_readme_is_a_product_page():
    """Short enough to read at once, no line wider than a screen (the history lives in docs/models.md)."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160
    assert [(n, len(line)) for n, line in enumerate(lines, 1) if len(line) > 125] == []
