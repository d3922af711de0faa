"""The README stays a guide: short, with its two commands, its links resolving."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")


def _anchors(page: Path) -> set[str]:
    """The fragments GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors: set[str] = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"#{1,6} (.+)", line)
        if fenced or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_the_readme_is_at_most_250_lines_and_names_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "details belong in docs/"
    assert "make serve" in text and "make test" in text


def test_every_relative_link_in_the_readme_and_docs_resolves_to_its_heading() -> None:
    for page in PAGES:
        for target, fragment in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            linked = (page.parent / target) if target else page
            assert linked.exists(), f"{page.name} links to {target}, which does not exist"
            if fragment and linked.suffix == ".md":
                missing = f"{page.name} links to {target}#{fragment}: no such heading"
                assert fragment in _anchors(linked), missing


def test_the_anchor_rule_follows_github() -> None:
    """Checked against headings whose GitHub fragments are known, so the link test cannot pass vacuously."""
    page = ROOT / "docs" / "api.md"
    assert {"post-read-plate", "post-predictbatch", "why-metrics-stays-open"} <= _anchors(page)
