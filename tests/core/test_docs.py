"""The documentation: README.md and docs/*.md link correctly, stay short and never repeat themselves."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 250
MIN_PARAGRAPH_CHARS = 200

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown file directly under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a fence is a line starting with ``` or ~~~)."""
    out, fence = [], None
    for line in text.splitlines():
        marker = line.lstrip()[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is None:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = defaultdict(int)
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def broken_links(path: Path) -> list[str]:
    """Relative links (files and #anchors) in ``path`` that do not resolve, as 'FILE: target: problem'."""
    problems = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                problems.append(f"{path.name}: {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{path.name}: {target}: no heading with that anchor in {dest.name}")
    return problems


def paragraphs(path: Path) -> list[str]:
    """Blank-line separated blocks with whitespace collapsed (code blocks included)."""
    blocks = re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))
    return [" ".join(block.split()) for block in blocks if block.strip()]


def repeated_paragraphs(paths: list[Path], min_chars: int = MIN_PARAGRAPH_CHARS) -> dict[str, list[str]]:
    """Paragraphs of at least ``min_chars`` characters that occur more than once, with where."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for para in paragraphs(path):
            if len(para) >= min_chars:
                where[para].append(path.name)
    return {para[:80]: files for para, files in where.items() if len(files) > 1}


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_readme_is_short_and_keeps_the_two_set_up_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert 'pip install -e ".[dev]"\npytest\n' in text  # CI runs exactly these


def test_no_paragraph_appears_twice_across_readme_and_docs():
    assert repeated_paragraphs(doc_files()) == {}


def test_the_checks_catch_a_broken_link_a_bad_anchor_and_a_repeat(tmp_path):
    (tmp_path / "docs").mkdir()
    long = "A paragraph long enough to count. " * 8
    (tmp_path / "README.md").write_text(
        f"# Title\n\nSee [a](docs/a.md#two-words), [b](docs/missing.md), [c](docs/a.md#nope).\n\n{long}\n\n"
        "```\n[not a link](nowhere.md)\n```\n"
    )
    (tmp_path / "docs" / "a.md").write_text(f"# A\n\n## Two `words`\n\n{long}\n")
    readme = tmp_path / "README.md"
    assert broken_links(readme) == [
        "README.md: docs/missing.md: no such file",
        "README.md: docs/a.md#nope: no heading with that anchor in a.md",
    ]
    assert list(repeated_paragraphs(doc_files(tmp_path)).values()) == [["README.md", "a.md"]]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        (
            "Event representations (`stereo_snn.events`, numba, no torch)",
            "event-representations-stereo_snnevents-numba-no-torch",
        ),
        (
            "The demo: search + train on real handwritten digits, on a CPU",
            "the-demo-search--train-on-real-handwritten-digits-on-a-cpu",
        ),
        ("Targets (issue 2), honestly", "targets-issue-2-honestly"),
    ],
)
def test_anchor_slugs_follow_github(heading, anchor):
    assert slug(heading) == anchor
