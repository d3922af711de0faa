"""``lpr-train``: train, evaluate, export, ship and describe the character classifier.

Typical use (models go to the repository ``models/<name>/<version>/``, reports to ``reports/``)::

    lpr-train train --data ../shared/data/lpr                  # the shipped recipe, into runs/<recipe>
    lpr-train train --data ../shared/data/lpr --arch reference --out runs/reference
    lpr-train ship --run runs/compact-ink16                     # models/lpr-default/<version>/
    lpr-train ship --run runs/reference --name lpr-reference --keras
    lpr-train quantize                                          # models/lpr-default-int8/<version>/
    lpr-train calibrate --figure
    lpr-train plates --data ../shared/data/lpr                  # reports/plates_eval.json
    lpr-train card --default runs/compact-ink16                 # reports/MODEL_CARD.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY
from training.common.outputs import REPORTS
from training.data.dataset import DATA_HOME
from training.fitting.recipes import RECIPES, SHIPPED

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPOSITORY_HELP = (
    "model repository, laid out <name>/<version>/model.{onnx,json} (default: the checkout's models/)"
)
REPORTS_HELP = "reports folder (default: the checkout's reports/)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpr-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model, evaluate it on test/, export it to ONNX")
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

    evaluate = sub.add_parser(
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
    evaluate.add_argument("--reports", default=str(REPORTS), help=REPORTS_HELP)

    ship = sub.add_parser(
        "ship",
        help="copy a run's ONNX model and metadata into <models>/<name>/<version>/ and its figures "
        "into reports/",
    )
    ship.add_argument("--run", required=True)
    ship.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)
    ship.add_argument("--reports", default=str(REPORTS), help=REPORTS_HELP)
    ship.add_argument("--name", default=DEFAULT_MODEL)
    ship.add_argument("--keras", action="store_true", help="also copy the Keras checkpoint")
    ship.add_argument(
        "--force", action="store_true", help="replace the files of a version already in the repository"
    )

    card = sub.add_parser("card", help="write reports/MODEL_CARD.md: the shipped model against the reference")
    card.add_argument("--default", required=True, help="run folder of the shipped model")
    card.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)
    card.add_argument("--reports", default=str(REPORTS), help=REPORTS_HELP)

    data_help = "dataset root (default: ../shared/data/<name>, the dataset name the model's metadata records)"
    quant = sub.add_parser(
        "quantize",
        help="build a static int8 variant of the newest lpr-default (lpr-default-int8, same version) and "
        "serve it if it earns it",
    )
    quant.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)
    quant.add_argument("--data", help=data_help)

    calib = sub.add_parser(
        "calibrate", help="fit temperature and 'unknown' threshold on validation; measure on test and OOD"
    )
    calib.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)
    calib.add_argument("--data", help=data_help)
    calib.add_argument("--figure", action="store_true", help="also draw reports/figures/ood_examples.png")
    calib.add_argument("--reports", default=str(REPORTS), help=REPORTS_HELP)

    plates = sub.add_parser(
        "plates", help="read synthetic plates made of held-out test crops; write reports/plates_eval.json"
    )
    plates.add_argument("--data", required=True, help="dataset root (its test/ crops compose the plates)")
    plates.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)
    plates.add_argument("--reports", default=str(REPORTS), help=REPORTS_HELP)
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

    detector = sub.add_parser(
        "detector", help="train the plate detector on plate-photos/ and export it to ONNX (runs/detector)"
    )
    detector.add_argument("--data", default=str(DATA_HOME), help="data home holding plate-photos/ and lpr/")
    detector.add_argument("--out", default="runs/detector", help="run folder (default: runs/detector)")
    detector.add_argument("--seed", type=int, default=1234)
    detector.add_argument("--scenes", type=int, help="training scenes drawn from the fitted photos")
    detector.add_argument("--epochs", type=int)
    detector.add_argument("--ship", action="store_true", help="then copy it into the model repository")
    detector.add_argument("--force", action="store_true", help="replace a shipped version of the same number")
    detector.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)

    photos = sub.add_parser(
        "photos", help="whole photos through the service's path: detection, end to end, no plate, tight crops"
    )
    photos.add_argument("--data", default=str(DATA_HOME), help="data home holding plate-photos/ and lpr/")
    photos.add_argument("--models", default=str(DEFAULT_REPOSITORY), help=REPOSITORY_HELP)
    photos.add_argument("--reports", default=str(REPORTS), help=REPORTS_HELP)

    show = sub.add_parser("preprocess", help="save what the model sees for some images, as one PNG")
    show.add_argument("images", nargs="+")
    show.add_argument("--out", default="preprocessed.png")
    show.add_argument("--size", type=int, default=64)
    return parser


def _refresh_card(models: str, reports: str) -> None:
    """Bring the card's report-only sections up to date (``training.reports.model_card.refresh_card``)."""
    from training.reports.model_card import refresh_card

    card = refresh_card(models, reports)
    if card is not None:
        print(f"refreshed {card}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
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
    elif args.command == "evaluate" and args.run:
        from training.evaluation.evaluate import evaluate_and_export

        evaluate_and_export(args.run)
    elif args.command == "evaluate":
        from training.evaluation.loso import leave_one_source_out

        report = leave_one_source_out(args.data, args.out, args.arch, args.seed, args.epochs, args.reports)
        for row in report["rows"]:
            cells = ", ".join(f"{name} ({s['set']}) {s['accuracy']:.2%}" for name, s in row["scores"].items())
            print(f"without {row['left_out']}: {cells}")
    elif args.command == "ship":
        from training.release.ship import ship

        written = ship(
            args.run, args.models, args.name, include_keras=args.keras, force=args.force, reports=args.reports
        )
        for path in written:
            print(f"wrote {path}")
    elif args.command == "card":
        from training.reports.model_card import write_card

        print(f"wrote {write_card(args.default, args.models, args.reports)}")
    elif args.command == "quantize":
        from training.release.quantize import quantize_shipped

        result = quantize_shipped(args.models, data=args.data)
        for kind in ("float32", "int8"):
            r = result[kind]
            print(
                f"{kind:>8}: accuracy {r['accuracy']:.4f}, {r['ms_per_image_batch1']:.3f} ms/image "
                f"at batch 1, {r['ms_per_image_batch64']:.3f} at batch 64"
            )
        print(
            f"accuracy drop {result['accuracy_drop_points']:.2f} points; "
            f"int8 meets the bar: {result['int8_qualifies']}; served: {result['served_by_default']}"
        )
    elif args.command == "calibrate":
        from training.evaluation.calibration import calibrate_shipped, summary

        calibrated = calibrate_shipped(args.models, args.data, figure=args.figure, reports=args.reports)
        for name, block in calibrated.items():
            print(f"{name}: {summary(block)}")
        _refresh_card(args.models, args.reports)
    elif args.command == "plates":
        from training.evaluation.plates import run_plate_eval

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
        print(
            f"{report['plates']} plates ({report['characters']} characters, {args.split} crops, seed "
            f"{report['seed']}): whole-plate accuracy {report['whole_plate_accuracy']:.4f}, character "
            f"accuracy {report['character_accuracy']:.4f}, segmentation right on "
            f"{report['segmentation_accuracy']:.4f}; without the plate format "
            f"{report['without_format']['whole_plate_accuracy']:.4f} / "
            f"{report['without_format']['character_accuracy']:.4f}; answered confident "
            f"{report['confident_share']:.4f}, confident and wrong {report['false_confident_share']:.4f}"
        )
        if "foreign_plates" in report:
            print(
                f"{report['foreign_plates']} plates with a letter outside the twelve: letters flagged "
                f"{report['foreign_letters_flagged']:.4f}, plates read right "
                f"{report['foreign_whole_plate_accuracy']:.4f}, confident and wrong "
                f"{report['foreign_plates_false_confident']:.4f}; in-class plates read right "
                f"{report['in_class_whole_plate_accuracy']:.4f}"
            )
        if args.run is None:
            _refresh_card(args.models, args.reports)
    elif args.command == "detector":
        from training.evaluation.detection import settle
        from training.fitting.detector import fit_detector
        from training.release.detector import export_detector, ship_detector

        chosen = {k: v for k, v in (("scenes", args.scenes), ("epochs", args.epochs)) if v is not None}
        fitted = fit_detector(args.data, args.out, seed=args.seed, **chosen)
        run = settle(export_detector(fitted, args.out), args.data)
        meta = json.loads((run / "model.json").read_text())
        print(f"run folder: {run}; validation photos: {meta['validation']}")
        if args.ship:
            for path in ship_detector(run, args.models, force=args.force):
                print(f"wrote {path}")
    elif args.command == "photos":
        from training.evaluation.photo_eval import run_photo_eval

        report = run_photo_eval(args.data, args.models, args.reports)
        det, e2e = report["detection_validation"], report["end_to_end"]
        print(
            f"{report['detector_version']} + {report['model_version']}: held-out photos {det['photos']}, "
            f"plates found at IoU >= 0.5 {det['recall']:.4f}, precision {det['precision']:.4f}"
        )
        print(
            f"photos with known text {e2e['photos']}: read exactly {e2e['exact']} "
            f"({e2e['held_out_exact']} of {e2e['held_out_photos']} the detector never saw), confident "
            f"{e2e['confident']}, confident and wrong {e2e['confident_and_wrong']}"
        )
        none, tight = report["no_plate"], report["tight_crops"]
        print(
            f"{none['images']} images without a plate: answered with a plate "
            f"{none['answered_with_a_plate']:.4f}, with a confident plate "
            f"{none['answered_with_a_confident_plate']:.4f}"
        )
        print(
            f"{tight['plates']} tight plate crops: found as the whole image "
            f"{tight['found_as_the_whole_image']:.4f}, read as the crop reader reads them "
            f"{tight['read_as_the_crop_reader_reads_it']:.4f}"
        )
        _refresh_card(args.models, args.reports)
    elif args.command == "preprocess":
        from training.common.figures import preprocessing_proof

        print(f"wrote {preprocessing_proof(args.images, Path(args.out), args.size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
