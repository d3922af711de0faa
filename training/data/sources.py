"""Several real sources of character crops, each split into fit and validation its own way.

A model that is excellent on one dataset and confidently wrong on the next is
what training on one source gives. A multi-source recipe
(:attr:`training.fitting.recipes.Recipe.sources`) reads every source named here from
one data home (``../shared/data``), each through the one shared preprocessing:

=================  ==========================================================
source             layout, and how validation is carved
=================  ==========================================================
``lpr``            binarised 50x50, ``train/`` + ``test/``. Validation: whole
                   near-duplicate groups of ``train/`` (:mod:`training.data.grouping`).
``lpr-colour``     the same crops as photographed, same split and file names.
                   Validation: the colour twins of ``lpr``'s validation crops,
                   so no photograph of a validation crop is fitted.
``nnprs-chars``    a second project's crops, mostly squashed to 32x32, plus
                   ``cha`` (real च, outside the twelve). No test split here
                   (it is held out elsewhere); validation: whole groups.
=================  ==========================================================

``test/`` of ``lpr`` and ``lpr-colour`` is opened to be counted and hashed, never
fitted or used for selection. Crops of a class outside the twelve (``cha``) are
kept apart as real unknowns: fitted with a uniform target, validated as "must
be flagged".
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lpr.labels import LABELS
from training.data.dataset import (
    DATA_HOME,
    IMAGE_SUFFIXES,
    Split,
    class_of_folder,
    open_dataset,
    recorded_root,
    stratified_split,
)
from training.data.grouping import grouped_split, near_duplicate_groups

#: Folder names of real crops outside the twelve classes, and the letter each is.
UNKNOWN_FOLDERS: dict[str, str] = {"cha": "च"}


@dataclass(frozen=True)
class SourceSpec:
    """Where a source lives under the data home and what its crops look like."""

    name: str
    form: str
    #: ``split`` (``train/`` + ``test/``) or ``pool`` (class folders; its test part is held out elsewhere).
    layout: str
    #: A source whose crops are photographs of another source's, file for file: validation follows it.
    twin_of: str | None = None

    @property
    def origin(self) -> str:
        """The project the crops come from: twins share their original's (leave-one-source-out)."""
        return self.twin_of or self.name


SOURCES: dict[str, SourceSpec] = {
    "lpr": SourceSpec("lpr", "binarised 50x50", "split"),
    "lpr-colour": SourceSpec("lpr-colour", "colour photographs, original size", "split", twin_of="lpr"),
    "nnprs-chars": SourceSpec("nnprs-chars", "grey 32x32, aspect squashed; a few colour", "pool"),
}


@dataclass(frozen=True)
class SourceSplit:
    """One source, split: fitted and validation crops of the twelve, real unknowns, and its test split."""

    spec: SourceSpec
    root: Path
    fit: Split
    val: Split
    test: Split
    unknown_fit: tuple[Path, ...]
    unknown_val: tuple[Path, ...]
    sha256: str

    def record(self) -> dict:
        """What the model's metadata says about this source: never this machine's path."""
        return {
            "name": self.spec.name,
            "form": self.spec.form,
            "sha256": self.sha256,
            "sizes": {
                "fit": len(self.fit),
                "val": len(self.val),
                "test": len(self.test),
                "unknown_fit": len(self.unknown_fit),
                "unknown_val": len(self.unknown_val),
            },
            "counts": {"fit": self.fit.counts(), "val": self.val.counts(), "test": self.test.counts()},
        }


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def scan(folder: Path) -> tuple[Split, tuple[Path, ...]]:
    """The crops of the twelve classes under ``folder``, and those of known letters outside them."""
    paths: list[Path] = []
    labels: list[int] = []
    unknown: list[Path] = []
    if folder.is_dir():
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            label = class_of_folder(child.name)
            if label is not None:
                found = _images(child)
                paths.extend(found)
                labels.extend([LABELS.index(label)] * len(found))
            elif unicodedata.normalize("NFC", child.name.lower()) in UNKNOWN_FOLDERS:
                unknown.extend(_images(child))
    return Split(tuple(paths), np.asarray(labels, dtype=np.int64)), tuple(unknown)


def files_sha256(root: Path, paths: Iterable[Path]) -> str:
    """Hash of every file's path relative to ``root`` and its bytes, in a fixed order."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _grouped(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    rest, held = grouped_split(split.labels, near_duplicate_groups(split.paths, split.labels), fraction, seed)
    return split.subset(rest), split.subset(held)


def _twins(split: Split, names: set[str]) -> tuple[Split, Split]:
    """``(rest, held)``: the crops whose ``class/file`` name is in ``names`` are held."""
    held = np.asarray([f"{p.parent.name}/{p.name}" in names for p in split.paths], dtype=bool)
    return split.subset(np.flatnonzero(~held)), split.subset(np.flatnonzero(held))


def open_sources(
    names: Sequence[str], fraction: float, seed: int, home: str | Path = DATA_HOME
) -> list[SourceSplit]:
    """Every source in ``names`` under ``home``, split seeded; twins follow the source they photograph."""
    home = Path(home).resolve()
    unknown_names = [n for n in names if n not in SOURCES]
    if unknown_names:
        raise ValueError(f"unknown source(s) {unknown_names}; known: {', '.join(SOURCES)}")
    held_names: dict[str, set[str]] = {}
    opened: list[SourceSplit] = []
    # Twins after the sources they follow, whatever order the recipe names them in.
    for name in sorted(names, key=lambda n: SOURCES[n].twin_of is not None):
        spec = SOURCES[name]
        root = home / name
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: source {name!r} is not in the data home {home}")
        pool, unknown = scan(root / "train" if spec.layout == "split" else root)
        test = scan(root / "test")[0] if spec.layout == "split" else Split((), np.zeros(0, dtype=np.int64))
        if spec.twin_of is not None and spec.twin_of in held_names:
            fit, val = _twins(pool, held_names[spec.twin_of])
        else:
            fit, val = _grouped(pool, fraction, seed)
        held_names[name] = {f"{p.parent.name}/{p.name}" for p in val.paths}
        unknown_fit: tuple[Path, ...] = ()
        unknown_val: tuple[Path, ...] = ()
        if unknown:
            marks = np.zeros(len(unknown), dtype=np.int64)
            rest, held = grouped_split(marks, near_duplicate_groups(unknown, marks), fraction, seed)
            unknown_fit = tuple(unknown[i] for i in rest)
            unknown_val = tuple(unknown[i] for i in held)
        every = [*pool.paths, *test.paths, *unknown]
        opened.append(
            SourceSplit(spec, root, fit, val, test, unknown_fit, unknown_val, files_sha256(root, every))
        )
    order = {n: i for i, n in enumerate(names)}
    return sorted(opened, key=lambda s: order[s.spec.name])


def concatenated(splits: Sequence[Split]) -> Split:
    """One split holding every crop of ``splits``, in order."""
    paths = tuple(p for s in splits for p in s.paths)
    labels = np.concatenate([s.labels for s in splits]) if splits else np.zeros(0, dtype=np.int64)
    return Split(paths, labels.astype(np.int64))


@dataclass(frozen=True)
class Splits:
    """What a recipe fits, validates on and is tested on, for whichever kind of recipe it is."""

    fit: Split
    val: Split
    test: Split
    #: The sources of a multi-source recipe, one by one (empty for a one-dataset recipe).
    sources: tuple[SourceSplit, ...] = ()

    @classmethod
    def pooled(cls, sources: Sequence[SourceSplit]) -> Splits:
        """A multi-source run's splits: every source's fit and validation crops pooled, in order;
        the first source's ``test/``."""
        return cls(
            concatenated([s.fit for s in sources]),
            concatenated([s.val for s in sources]),
            sources[0].test,
            tuple(sources),
        )


def recipe_splits(recipe: dict, seed: int, data: str | Path) -> Splits:
    """The fit, validation and test splits a run of ``recipe`` (``Recipe.to_dict()``) used, rebuilt.

    One-dataset recipes: ``data`` is the dataset root, validation a stratified share of
    ``train/``. Multi-source recipes: ``data`` is the data home holding the sources;
    fit and validation pool every source's, and test is the first source's ``test/``.
    """
    if recipe.get("sources"):
        return Splits.pooled(open_sources(recipe["sources"], recipe["val_fraction"], seed, data))
    dataset = open_dataset(data, seed=seed)
    fit, val = stratified_split(dataset.train, recipe["val_fraction"], seed)
    return Splits(fit, val, dataset.test)


def model_splits(meta: dict, data: str | Path | None = None) -> Splits:
    """The splits the model of ``meta`` (its metadata) was trained against, rebuilt and checked.

    ``data``: the dataset root (one-dataset models) or data home (multi-source ones);
    by default the one beside the checkout that the metadata names.
    """
    splits = recipe_splits(meta["training"]["recipe"], meta["seed"], recorded_root(meta, data))
    expected = meta["dataset"]["sizes"]["val"]
    if len(splits.val) != expected:
        raise ValueError(
            f"rebuilt validation split has {len(splits.val)} crops, the model's metadata says {expected}: "
            "not the data this model was trained on"
        )
    return splits
