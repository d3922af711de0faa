"""The README stays a guide: short, with its two commands, its links resolving."""

from __future__ import annotations

import re

from conftest import ROOT

README = ROOT / "README.md"


def test_the_readme_is_at_most_250_lines_and_names_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "details belong in docs/"
    assert "make serve" in text and "make test" in text


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
