"""``lpr-train``: train, evaluate, export, ship and describe the character classifier.

Typical use::

    lpr-train train --data ../shared/data/lpr --arch compact-ink16 --out runs/compact-ink16
    lpr-train train --data ../shared/data/lpr --arch reference --out runs/reference
    lpr-train ship --run runs/compact-ink16
    lpr-train ship --run runs/reference --models models/reference --name lpr-reference --keras
    lpr-train quantize --models models
    lpr-train calibrate --models models
    lpr-train plates --data ../shared/data/lpr
    lpr-train card --default runs/compact-ink16
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


#: The names of ``training.models.RECIPES``, listed here so ``--help`` need not import Keras
#: (``tests/test_training.py`` keeps the two in step).
ARCHES = ["default", "default-oe", "small-oe", "compact-oe", "compact-ink16", "reference"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpr-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model, evaluate it on test/, export it to ONNX")
    train.add_argument("--data", required=True, help="dataset root (train/+test/ layout or class folders)")
    train.add_argument("--arch", choices=ARCHES, default="default")
    train.add_argument("--out", help="run folder (default: runs/<arch>)")
    train.add_argument("--seed", type=int, default=1234)
    train.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    train.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    train.add_argument("--limit-per-class", type=int, help="use at most N crops per class (smoke runs)")
    train.add_argument("--no-export", action="store_true", help="stop after training")

    evaluate = sub.add_parser("evaluate", help="re-run evaluation and export of a run folder")
    evaluate.add_argument("--run", required=True)

    ship = sub.add_parser("ship", help="copy a run's ONNX model and metadata into models/")
    ship.add_argument("--run", required=True)
    ship.add_argument("--models", default=str(REPO / "models"))
    ship.add_argument("--name", default="lpr-default")
    ship.add_argument("--keras", action="store_true", help="also copy the Keras checkpoint")

    card = sub.add_parser("card", help="write models/MODEL_CARD.md comparing two runs")
    card.add_argument("--default", required=True, help="run folder of the shipped model")
    card.add_argument("--models", default=str(REPO / "models"))

    quant = sub.add_parser("quantize", help="build a static int8 variant and ship it if it earns it")
    quant.add_argument("--models", default=str(REPO / "models"))

    calib = sub.add_parser(
        "calibrate", help="fit temperature and 'unknown' threshold on validation; measure on test and OOD"
    )
    calib.add_argument("--models", default=str(REPO / "models"))
    calib.add_argument("--data", help="dataset root (default: the one recorded in the model's metadata)")
    calib.add_argument("--figure", action="store_true", help="also draw models/figures/ood_examples.png")

    plates = sub.add_parser(
        "plates", help="read synthetic plates made of held-out test crops; write models/plates_eval.json"
    )
    plates.add_argument("--data", required=True, help="dataset root (its test/ crops compose the plates)")
    plates.add_argument("--models", default=str(REPO / "models"))
    plates.add_argument("--count", type=int, help="plates to compose (default 300)")
    plates.add_argument("--seed", type=int, help="generator seed (default: the shipped evaluation's, 5)")
    plates.add_argument(
        "--split",
        choices=["test", "val"],
        default="test",
        help="crops to compose from; 'val' (the model's validation crops, where the segmenter is developed "
        "and recipes are compared) writes models/plates_eval_val.json instead",
    )
    plates.add_argument(
        "--run", help="read with this run folder's exported model instead of the shipped one (writes nothing)"
    )

    show = sub.add_parser("preprocess", help="save what the model sees for some images, as one PNG")
    show.add_argument("images", nargs="+")
    show.add_argument("--out", default="preprocessed.png")
    show.add_argument("--size", type=int, default=64)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        from training.evaluate import evaluate_and_export
        from training.train import train

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
    elif args.command == "evaluate":
        from training.evaluate import evaluate_and_export

        evaluate_and_export(args.run)
    elif args.command == "ship":
        from training.ship import ship

        for path in ship(args.run, args.models, args.name, include_keras=args.keras):
            print(f"wrote {path}")
    elif args.command == "card":
        from training.model_card import write_card

        print(f"wrote {write_card(args.default, args.models)}")
    elif args.command == "quantize":
        from training.quantize import quantize_shipped

        result = quantize_shipped(args.models)
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
        from training.calibration import calibrate_shipped, summary

        for name, block in calibrate_shipped(args.models, args.data, figure=args.figure).items():
            print(f"{name}: {summary(block)}")
    elif args.command == "plates":
        from training.plates import run_plate_eval

        chosen = {k: v for k, v in (("count", args.count), ("seed", args.seed)) if v is not None}
        report = run_plate_eval(args.data, args.models, split=args.split, run=args.run, **chosen)
        print(
            f"{report['plates']} plates ({report['characters']} characters, {args.split} crops, seed "
            f"{report['seed']}): whole-plate accuracy {report['whole_plate_accuracy']:.4f}, character "
            f"accuracy {report['character_accuracy']:.4f}, segmentation right on "
            f"{report['segmentation_accuracy']:.4f}; without the plate format "
            f"{report['without_format']['whole_plate_accuracy']:.4f} / "
            f"{report['without_format']['character_accuracy']:.4f}"
        )
    elif args.command == "preprocess":
        from training.figures import preprocessing_proof

        print(f"wrote {preprocessing_proof(args.images, Path(args.out), args.size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
