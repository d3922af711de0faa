"""``lpr-train trust``: the "unknown" thresholds the served classifier allows, chosen on validation::

lpr-train trust --data ../shared/data     # reports/trust_rules.json, and the card's sources section
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli.options import Adder, models_option, refresh_card, reports_option
from training.data.dataset import DATA_HOME


def _trust_arguments(add: Adder) -> None:
    trust = add(
        "trust", help="the unknown thresholds the served classifier allows, chosen on validation, per source"
    )
    trust.add_argument("--data", default=str(DATA_HOME), help="data home holding the sources")
    models_option(trust)
    reports_option(trust)


def _trust(args: argparse.Namespace) -> None:
    from training.evaluation.trust_rules import TRUST_REPORT, run_trust, summary

    print(summary(run_trust(args.data, args.models, args.reports)))
    print(f"wrote {Path(args.reports) / TRUST_REPORT}")
    refresh_card(args.models, args.reports)


TRUST_COMMANDS = {"trust": (_trust_arguments, _trust)}
