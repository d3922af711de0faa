"""The model card's Markdown lives in ``templates/*.md``, one file per section, with ``${fact}`` fields.

Prose and layout are edited there as Markdown; the code only computes the facts
(numbers already formatted, tables already joined) and fills them in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from string import Template

from training.common.outputs import CHECKOUT

TEMPLATES = Path(__file__).with_name("templates")


def fill(name: str, facts: Mapping[str, object]) -> str:
    """``templates/<name>.md`` with its fields filled (a missing fact raises), less its final newline."""
    text = (TEMPLATES / f"{name}.md").read_text(encoding="utf-8")
    return Template(text.removesuffix("\n")).substitute(facts)


def shown(path: Path) -> str:
    """A path as the card shows it: relative to the checkout, never this machine's absolute path."""
    path = Path(path).resolve()
    try:
        return path.relative_to(CHECKOUT).as_posix()
    except ValueError:
        return path.name


def read_report(path: Path) -> dict | None:
    """A report an evaluation wrote, or None where it has not run yet (the card then says so)."""
    return json.loads(path.read_text()) if path.is_file() else None
