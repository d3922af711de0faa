"""``lpr-train finder ...``: train, calibrate, compare and ship the character finder, in that order::

lpr-train finder train --out runs/finder              # painted plates, then the fitted real ones
lpr-train finder calibrate --run runs/finder          # the bars, on painted validation plates
lpr-train finder compare --run runs/finder            # reports/reader_designs.json
lpr-train finder ship --run runs/finder --version 1.0.0
lpr-train real-plates                                 # the served reader on the real plates
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from training.cli.options import Adder, models_option, reports_option, ship_run
from training.data.dataset import DATA_HOME

ACTIONS = ("train", "calibrate", "compare", "ship")


def _arguments(add: Adder) -> None:
    finder = add("finder", help="the character finder that reads whole plates: " + ", ".join(ACTIONS))
    finder.add_argument("action", choices=ACTIONS)
    finder.add_argument(
        "--run", "--out", dest="run", default="runs/finder", help="run folder (default: runs/finder)"
    )
    finder.add_argument(
        "--data", default=str(DATA_HOME), help="data home holding the sources and plate-photos/"
    )
    finder.add_argument("--seed", type=int, default=1)
    finder.add_argument("--painted", type=int, help="painted training plates (default: the shipped run's)")
    finder.add_argument("--epochs", type=int, nargs=2, metavar=("ONE", "TWO"), help="epochs of each stage")
    finder.add_argument("--version", help="the version to ship (ship)")
    models_option(finder)
    reports_option(finder)


def _classifier_record(models: str, reports: str) -> dict:
    from training.common.records import load_record
    from training.evaluation.plates import served_files

    return load_record(served_files(models, reports), reports)


def _fit_plates(data: str, models: str, reports: str) -> list:
    from training.data.photos import detector_dataset
    from training.data.plate_texts import real_plates

    plates = real_plates(Path(data) / "plate-photos", detector_dataset(models, reports))
    return [p for p in plates if p.split == "fit"]


def _train(args: argparse.Namespace) -> None:
    from lpr.char_finder import FinderSpec
    from training.evaluation.real_plates import crop_bytes
    from training.fitting.finder_data import fitted_crops, painted_pairs
    from training.fitting.finder_run import train_finder
    from training.release.char_finder import export_finder

    record = _classifier_record(args.models, args.reports)
    chosen = {k: v for k, v in (("painted", args.painted), ("epochs", args.epochs)) if v is not None}
    fit = _fit_plates(args.data, args.models, args.reports)
    trained = train_finder(
        args.run, record, fit, lambda p: crop_bytes(p.photo), args.seed, data_home=args.data, **chosen
    )
    crops, cha = fitted_crops(record, args.data)
    probe, _ = painted_pairs(crops, cha, 32, args.seed + 1, FinderSpec())
    exported = export_finder(args.run, probe)
    print(
        f"run folder: {args.run}; real plates labelled {trained['training']['real_plates']['labelled']}; "
        f"parity {exported['parity']['max_abs_diff']:.2e}"
    )


def _calibrate(args: argparse.Namespace) -> None:
    from training.evaluation.finder_calibration import calibrate_finder
    from training.evaluation.photo_eval import served_classifier_and_detector

    model, detector = served_classifier_and_detector(args.models, args.reports)
    record = _classifier_record(args.models, args.reports)
    fit = _fit_plates(args.data, args.models, args.reports)
    print(calibrate_finder(args.run, model, detector, record, fit, args.data))


def _compare(args: argparse.Namespace) -> None:
    from training.evaluation.reader_designs import compare_designs, summary

    report = compare_designs(args.run, args.data, args.models, args.reports)
    print(summary(report))
    print(f"the run ships as: {report['served']}")


def _ship(args: argparse.Namespace) -> None:
    from training.release.char_finder import ship_finder

    ship_run(ship_finder, args)


RUN: dict[str, Callable[[argparse.Namespace], None]] = {
    "train": _train,
    "calibrate": _calibrate,
    "compare": _compare,
    "ship": _ship,
}


def _run(args: argparse.Namespace) -> None:
    RUN[args.action](args)


FINDER_COMMANDS = {"finder": (_arguments, _run)}
