"""``lpr-train letters ...``: train (fit, export, check, calibrate) and ship the letter model::

lpr-train letters train --out runs/letters            # real paint, the sources' letters, renders
lpr-train letters ship --run runs/letters --version 1.0.0
lpr-train real-plates                                 # the served reader, letters named
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from training.cli.options import Adder, models_option, reports_option, ship_run
from training.data.dataset import DATA_HOME

ACTIONS = ("train", "ship")


def _arguments(add: Adder) -> None:
    letters = add("letters", help="the letter model that names zone and class letters: " + ", ".join(ACTIONS))
    letters.add_argument("action", choices=ACTIONS)
    letters.add_argument("--run", "--out", dest="run", default="runs/letters", help="run folder")
    letters.add_argument(
        "--data", default=str(DATA_HOME), help="data home holding the sources and plate-photos/"
    )
    letters.add_argument("--seed", type=int, default=1)
    letters.add_argument("--epochs", type=int, help="epochs (default: the shipped run's)")
    letters.add_argument("--version", help="the version to ship (ship)")
    models_option(letters)
    reports_option(letters)


def _train(args: argparse.Namespace) -> None:
    from lpr.hashing import sha256_file
    from lpr.preprocessing import InputSpec
    from training.cli.finder import _classifier_record
    from training.data.photos import detector_dataset
    from training.data.plate_texts import TRANSCRIPTIONS, real_plates
    from training.evaluation.letter_calibration import calibrate_run
    from training.evaluation.plates import served_finder
    from training.evaluation.real_plates import crop_bytes
    from training.fitting.letter_data import arrays, finder_find, letter_sets
    from training.fitting.letter_run import EPOCHS, train_letters
    from training.release.letters import export_letters

    record = _classifier_record(args.models, args.reports)
    photos = Path(args.data) / "plate-photos"
    plates = real_plates(photos, detector_dataset(args.models, args.reports))
    finder = served_finder(args.models)
    sets = letter_sets(
        plates, lambda p: crop_bytes(p.photo), finder_find(finder), record, args.data, args.seed
    )
    provenance = {
        "classifier": f"{record['name']} {record['version']} {record['dataset']['sha256']}",
        "finder": finder.metadata.model_version,
        "transcriptions": sha256_file(photos / TRANSCRIPTIONS),
    }
    train_letters(args.run, sets, record, provenance, args.seed, args.epochs or EPOCHS)
    export_letters(args.run, arrays(sets["val"], InputSpec.from_dict(record["preprocessing"]))[0])
    calibration = calibrate_run(args.run, sets)["calibration"]
    print(json.dumps({k: calibration[k] for k in ("temperature", "letter_thresholds")}, ensure_ascii=False))
    for part in ("validation", "test"):
        block = calibration[part]
        print(
            f"{part}: {block['n']} letters, {block['accuracy']:.1%} right, {block['named']:.1%} named at "
            f"their bar, {block['named_wrongly']} named wrongly"
        )
        for label, row in block["per_letter"].items():
            print(f"  {label}: {row}")


def _ship(args: argparse.Namespace) -> None:
    from training.release.letters import ship_letters

    ship_run(ship_letters, args)


RUN: dict[str, Callable[[argparse.Namespace], None]] = {"train": _train, "ship": _ship}


def _run(args: argparse.Namespace) -> None:
    RUN[args.action](args)


LETTER_COMMANDS = {"letters": (_arguments, _run)}
