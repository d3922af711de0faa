"""``lpr-train``: train, evaluate, export, ship and describe the character classifier.

Typical use (models go to the repository ``models/<name>/<version>/``, reports to ``reports/``)::

    lpr-train train --data ../shared/data/lpr                  # the shipped recipe, into runs/<recipe>
    lpr-train train --data ../shared/data/lpr --arch reference --out runs/reference
    lpr-train quantize --run runs/multi                         # runs/multi/int8/ and the int8 verdict
    lpr-train calibrate --run runs/multi --figure               # both copies' calibration, on the run
    lpr-train ship --run runs/multi                             # models/lpr-default{,-int8}/<version>/, once
    lpr-train ship --run runs/reference --name lpr-reference --keras --uncalibrated
    lpr-train plates --data ../shared/data/lpr                  # reports/plates_eval.json
    lpr-train card --default runs/multi                         # reports/MODEL_CARD.md

Each sub-command is a pair here: the function that declares its arguments and the one that runs it,
importing its stage only then (``--help`` stays free of TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from lpr.repository import DEFAULT_MODEL
from training.cli.finder import FINDER_COMMANDS
from training.cli.letters import LETTER_COMMANDS
from training.cli.options import (
    DATA_HELP,
    PHOTOS_DATA_HELP,
    Adder,
    refresh_card,
)
from training.cli.options import (
    models_option as _models,
)
from training.cli.options import (
    reports_option as _reports,
)
from training.cli.trust import TRUST_COMMANDS
from training.data.dataset import DATA_HOME
from training.fitting.recipes import RECIPES, SHIPPED

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- train ---------------------------------------------------------------------------------------


def _train_arguments(add: Adder) -> None:
    train = add("train", help="train a model, evaluate it on test/, export it to ONNX")
    train.add_argument(
        "--data",
        required=True,
        help="dataset root (train/+test/ layout or class folders); for a multi-source recipe, the data home "
        "holding its sources (../shared/data)",
    )
    train.add_argument(
        "--arch", choices=list(RECIPES), default=SHIPPED, help=f"recipe (default: the shipped one, {SHIPPED})"
    )
    train.add_argument("--out", help="run folder (default: runs/<arch>)")
    train.add_argument("--seed", type=int, default=1234)
    train.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    train.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    train.add_argument("--limit-per-class", type=int, help="use at most N crops per class (smoke runs)")
    train.add_argument("--no-export", action="store_true", help="stop after training")


def _train(args: argparse.Namespace) -> None:
    from training.evaluation.evaluate import evaluate_and_export
    from training.fitting.train import train

    run = train(
        args.data,
        args.out or f"runs/{args.arch}",
        arch=args.arch,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        limit_per_class=args.limit_per_class,
    )
    if not args.no_export:
        evaluate_and_export(run)
    print(f"run folder: {run}")


# --- evaluate ------------------------------------------------------------------------------------


def _evaluate_arguments(add: Adder) -> None:
    evaluate = add(
        "evaluate",
        help="re-run evaluation and export of a run folder, or the leave-one-source-out table of a recipe",
    )
    which = evaluate.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="run folder to evaluate on its test split and export")
    which.add_argument(
        "--leave-one-source-out",
        action="store_true",
        help="train the recipe once without each source it reads, score every source; "
        "writes reports/loso.json (the model card's table)",
    )
    evaluate.add_argument(
        "--data", default=str(DATA_HOME), help="data home holding the sources (../shared/data)"
    )
    evaluate.add_argument(
        "--arch", choices=list(RECIPES), default=SHIPPED, help="multi-source recipe to test"
    )
    evaluate.add_argument("--out", default="runs/loso", help="where the runs go (reused when there)")
    evaluate.add_argument("--seed", type=int, default=1234)
    evaluate.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    _reports(evaluate)


def _evaluate(args: argparse.Namespace) -> None:
    if args.run:
        from training.evaluation.evaluate import evaluate_and_export

        evaluate_and_export(args.run)
        return
    from training.evaluation.loso import leave_one_source_out

    report = leave_one_source_out(args.data, args.out, args.arch, args.seed, args.epochs, args.reports)
    for row in report["rows"]:
        cells = ", ".join(f"{name} ({s['set']}) {s['accuracy']:.2%}" for name, s in row["scores"].items())
        print(f"without {row['left_out']}: {cells}")


# --- ship, card ----------------------------------------------------------------------------------


def _ship_arguments(add: Adder) -> None:
    ship = add(
        "ship",
        help="write a calibrated run (and its int8 copy) as new versions <models>/<name>[-int8]/<version>/, "
        "its record and figures into reports/; a shipped version is never replaced",
    )
    ship.add_argument("--run", required=True)
    _models(ship)
    _reports(ship)
    ship.add_argument("--name", default=DEFAULT_MODEL)
    ship.add_argument("--keras", action="store_true", help="also keep the Keras checkpoint in the record")
    ship.add_argument(
        "--uncalibrated",
        action="store_true",
        help="ship a run that lpr-train calibrate has not seen (the published reference)",
    )


def _ship(args: argparse.Namespace) -> None:
    from training.release.ship import ship

    written = ship(
        args.run,
        args.models,
        args.name,
        include_keras=args.keras,
        uncalibrated=args.uncalibrated,
        reports=args.reports,
    )
    for path in written:
        print(f"wrote {path}")


def _card_arguments(add: Adder) -> None:
    card = add("card", help="write reports/MODEL_CARD.md: the shipped model against the reference")
    card.add_argument("--default", required=True, help="run folder of the shipped model")
    _models(card)
    _reports(card)


def _card(args: argparse.Namespace) -> None:
    from training.reports.model_card import write_card

    print(f"wrote {write_card(args.default, args.models, args.reports)}")


# --- quantize, calibrate -------------------------------------------------------------------------


def _quantize_arguments(add: Adder) -> None:
    quant = add(
        "quantize",
        help="build a static int8 copy of a run's model (<run>/int8, shipped as <name>-int8 of the same "
        "version) and decide whether it earns being served by default",
    )
    quant.add_argument("--run", required=True, help="run folder (before lpr-train ship)")
    quant.add_argument("--data", help=DATA_HELP)


def _quantize(args: argparse.Namespace) -> None:
    from training.release.quantize import quantize_run, summary

    print(summary(quantize_run(args.run, data=args.data)))


def _calibrate_arguments(add: Adder) -> None:
    calib = add(
        "calibrate",
        help="fit a run's temperature, 'unknown' threshold and plate bars on validation (its int8 copy's "
        "too); measure on test and OOD",
    )
    calib.add_argument("--run", required=True, help="run folder (after quantize, before lpr-train ship)")
    calib.add_argument("--data", help=DATA_HELP)
    calib.add_argument("--figure", action="store_true", help="also draw reports/figures/ood_examples.png")
    _reports(calib)


def _calibrate(args: argparse.Namespace) -> None:
    from training.evaluation.calibration import calibrate_run, summary

    calibrated = calibrate_run(args.run, args.data, figure=args.figure, reports=args.reports)
    for name, block in calibrated.items():
        print(f"{name}: {summary(block)}")


# --- plates --------------------------------------------------------------------------------------


def _plates_arguments(add: Adder) -> None:
    plates = add(
        "plates", help="read synthetic plates made of held-out test crops; write reports/plates_eval.json"
    )
    plates.add_argument("--data", required=True, help="dataset root (its test/ crops compose the plates)")
    _models(plates)
    _reports(plates)
    plates.add_argument("--count", type=int, help="plates to compose (default 300)")
    plates.add_argument("--seed", type=int, help="generator seed (default: the shipped evaluation's, 5)")
    plates.add_argument(
        "--split",
        choices=["test", "val"],
        default="test",
        help="crops to compose from; 'val' (the model's validation crops, where the segmenter is developed "
        "and recipes are compared) writes reports/plates_eval_val.json instead",
    )
    plates.add_argument(
        "--run", help="read with this run folder's exported model instead of the shipped one (writes nothing)"
    )
    plates.add_argument(
        "--foreign",
        type=float,
        default=0.0,
        help="share of plates painted with a zone or class letter outside the model's twelve (e.g. 0.5); "
        "with test crops writes reports/plates_eval_foreign.json",
    )


def _plates(args: argparse.Namespace) -> None:
    from training.evaluation.plates import run_plate_eval, summary

    chosen = {k: v for k, v in (("count", args.count), ("seed", args.seed)) if v is not None}
    report = run_plate_eval(
        args.data,
        args.models,
        split=args.split,
        run=args.run,
        reports=args.reports,
        foreign=args.foreign,
        **chosen,
    )
    print(summary(report, args.split))
    if args.run is None:
        refresh_card(args.models, args.reports)


# --- detector, photos ----------------------------------------------------------------------------


def _detector_arguments(add: Adder) -> None:
    detector = add(
        "detector", help="train the plate detector on plate-photos/ and export it to ONNX (runs/detector)"
    )
    detector.add_argument("--data", default=str(DATA_HOME), help=PHOTOS_DATA_HELP)
    detector.add_argument("--out", default="runs/detector", help="run folder (default: runs/detector)")
    detector.add_argument("--seed", type=int, default=1234)
    detector.add_argument("--scenes", type=int, help="training scenes drawn from the fitted photos")
    detector.add_argument("--epochs", type=int)
    detector.add_argument("--ship", action="store_true", help="then ship it as a new version")
    _models(detector)
    _reports(detector)


def _detector(args: argparse.Namespace) -> None:
    """Fit, export and settle the score floor, each in its own stage; then ship if asked."""
    from training.evaluation.detection import settle
    from training.fitting.detector import fit_detector
    from training.release.detector import export_detector, ship_detector

    chosen = {k: v for k, v in (("scenes", args.scenes), ("epochs", args.epochs)) if v is not None}
    fitted = fit_detector(args.data, args.out, seed=args.seed, **chosen)
    run = settle(export_detector(fitted, args.out), args.data)
    meta = json.loads((run / "model.json").read_text())
    print(f"run folder: {run}; validation photos: {meta['validation']}")
    if args.ship:
        for path in ship_detector(run, args.models, args.reports):
            print(f"wrote {path}")


def _photos_arguments(add: Adder) -> None:
    photos = add(
        "photos", help="whole photos through the service's path: detection, end to end, no plate, tight crops"
    )
    photos.add_argument("--data", default=str(DATA_HOME), help=PHOTOS_DATA_HELP)
    _models(photos)
    _reports(photos)


def _photos(args: argparse.Namespace) -> None:
    from training.evaluation.photo_eval import run_photo_eval, summary

    print(summary(run_photo_eval(args.data, args.models, args.reports)))
    refresh_card(args.models, args.reports)


def _real_plates_arguments(add: Adder) -> None:
    real = add("real-plates", help="real plates with their text, read the service's way: crops and photos")
    real.add_argument("--data", default=str(DATA_HOME), help="data home holding plate-photos/")
    real.add_argument("--split", choices=("validation", "fit", "all"), default="validation")
    _models(real)
    _reports(real)


def _real_plates(args: argparse.Namespace) -> None:
    from training.evaluation.real_plates import report_name, run_real_plates, summary

    print(summary(run_real_plates(args.data, args.models, args.reports, args.split)))
    print(f"wrote {Path(args.reports) / report_name(args.split)}")


# --- preprocess ----------------------------------------------------------------------------------


def _preprocess_arguments(add: Adder) -> None:
    show = add("preprocess", help="save what the model sees for some images, as one PNG")
    show.add_argument("images", nargs="+")
    show.add_argument("--out", default="preprocessed.png")
    show.add_argument("--size", type=int, default=64)


def _preprocess(args: argparse.Namespace) -> None:
    from training.common.figures import preprocessing_proof

    print(f"wrote {preprocessing_proof(args.images, Path(args.out), args.size)}")


#: Every sub-command, in the order ``--help`` lists them: its arguments, and what runs it.
COMMANDS: dict[str, tuple[Callable[[Adder], None], Callable[[argparse.Namespace], None]]] = {
    "train": (_train_arguments, _train),
    "evaluate": (_evaluate_arguments, _evaluate),
    "ship": (_ship_arguments, _ship),
    "card": (_card_arguments, _card),
    "quantize": (_quantize_arguments, _quantize),
    "calibrate": (_calibrate_arguments, _calibrate),
    "plates": (_plates_arguments, _plates),
    "detector": (_detector_arguments, _detector),
    "photos": (_photos_arguments, _photos),
    "real-plates": (_real_plates_arguments, _real_plates),
    **TRUST_COMMANDS,
    "preprocess": (_preprocess_arguments, _preprocess),
    **FINDER_COMMANDS,
    **LETTER_COMMANDS,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpr-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for arguments, _ in COMMANDS.values():
        arguments(sub.add_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    COMMANDS[args.command][1](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
