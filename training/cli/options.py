"""What several ``lpr-train`` sub-commands declare alike: the repository, the reports, the data."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from lpr.repository import DEFAULT_REPOSITORY
from training.common.outputs import REPORTS

REPOSITORY_HELP = (
    "model repository, laid out <name>/<version>/model.{onnx,json} (default: the checkout's models/)"
)
REPORTS_HELP = "reports folder (default: the checkout's reports/)"
DATA_HELP = "dataset root (default: ../shared/data/<name>, the dataset name the model's metadata records)"
PHOTOS_DATA_HELP = "data home holding plate-photos/ and lpr/"

#: ``sub.add_parser``'s result: one sub-command's parser.
Parser = argparse.ArgumentParser
Adder = Callable[..., Parser]


def models_option(parser: Parser) -> None:
    parser.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)


def reports_option(parser: Parser) -> None:
    parser.add_argument("--reports", default=str(REPORTS), help=REPORTS_HELP)


def refresh_card(models: str, reports: str) -> None:
    """Bring the card's report-only sections up to date (``training.reports.model_card.refresh_card``)."""
    from training.reports.model_card import refresh_card as refresh

    card = refresh(models, reports)
    if card is not None:
        print(f"refreshed {card}")


def ship_run(ship: Callable[[str, str, str, str], list[Path]], args: argparse.Namespace) -> None:
    """``ship`` the run ``--run`` as ``--version`` into ``--models`` (a version is required: shipped
    once, it never changes), printing every file written."""
    if not args.version:
        raise SystemExit("ship needs --version: a shipped version never changes")
    for path in ship(args.run, args.models, args.version, args.reports):
        print(f"wrote {path}")
