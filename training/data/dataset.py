"""Finding, hashing, splitting and loading character-crop datasets.

Two layouts are accepted, because users have two copies of the data:

* split:  ``<root>/train/<class>/*`` and ``<root>/test/<class>/*`` (the binarised
  50x50 copy in ``shared/data/lpr``);
* single: ``<root>/<class>/*`` (the original colour dataset from ``images.rar``),
  possibly inside one wrapper folder. A stratified, seeded test split is then
  carved out so that evaluation is still held-out.

Class folders may be named by ASCII id (``0``, ``ba``...) or in Devanagari
(``०``, ``बा``...).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lpr.labels import DEVANAGARI, LABELS
from lpr.preprocessing import InputSpec, load_file
from training.common.outputs import CHECKOUT

#: Where datasets live beside the checkout (``../shared/data``): shipped metadata names its
#: dataset by folder name only, and is looked up here unless a root is given.
DATA_HOME = CHECKOUT.parent / "shared" / "data"

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}

_ALIASES: dict[str, str] = {label: label for label in LABELS}
_ALIASES.update({unicodedata.normalize("NFC", dev): label for label, dev in DEVANAGARI.items()})
_ALIASES.update({"baa": "ba", "b": "ba", "p": "pa"})


def class_of_folder(name: str) -> str | None:
    """Class id for a folder name, or ``None`` if it names no class."""
    return _ALIASES.get(unicodedata.normalize("NFC", name.strip()).lower())


@dataclass(frozen=True)
class Split:
    """File paths and integer labels of one split."""

    paths: tuple[Path, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        tally = Counter(int(i) for i in self.labels)
        return {label: tally.get(i, 0) for i, label in enumerate(LABELS)}

    def by_class(self) -> dict[str, list[Path]]:
        """The paths of each class, in split order: what the plate generator deals crops from."""
        crops: dict[str, list[Path]] = {label: [] for label in LABELS}
        for path, index in zip(self.paths, self.labels, strict=True):
            crops[LABELS[int(index)]].append(Path(path))
        return crops

    def subset(self, index: np.ndarray) -> Split:
        return Split(tuple(self.paths[i] for i in index), self.labels[index])

    def load(self, spec: InputSpec) -> np.ndarray:
        """All crops through the shared preprocessing, as one ``(N, H, W, C)`` array."""
        return (
            np.stack([load_file(str(p), spec) for p in self.paths])
            if self.paths
            else np.zeros((0, *spec.shape), dtype=np.float32)
        )


def _class_folders(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if root.is_dir():
        for child in sorted(root.iterdir()):
            label = class_of_folder(child.name) if child.is_dir() else None
            if label is not None:
                found[label] = child
    return found


def _scan(root: Path) -> Split:
    folders = _class_folders(root)
    paths: list[Path] = []
    labels: list[int] = []
    for label, folder in folders.items():
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                paths.append(path)
                labels.append(LABELS.index(label))
    return Split(tuple(paths), np.asarray(labels, dtype=np.int64))


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Seeded split keeping class proportions: ``(rest, held_out)``."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for cls in np.unique(split.labels):
        members = np.flatnonzero(split.labels == cls)
        rng.shuffle(members)
        held.extend(members[: max(1, round(fraction * len(members)))].tolist())
    held_index = np.asarray(sorted(held), dtype=np.int64)
    rest_index = np.setdiff1d(np.arange(len(split)), held_index)
    return split.subset(rest_index), split.subset(held_index)


@dataclass(frozen=True)
class Dataset:
    """A dataset root resolved into its training pool and held-out test split."""

    root: Path
    layout: str
    train: Split
    test: Split

    def sha256(self) -> str:
        """Hash of every file's relative path and bytes, order-independent of the OS."""
        digest = hashlib.sha256()
        for path in sorted(
            self.train.paths + self.test.paths, key=lambda p: p.relative_to(self.root).as_posix()
        ):
            digest.update(path.relative_to(self.root).as_posix().encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def open_dataset(root: str | Path, test_fraction: float = 0.2, seed: int = 1234) -> Dataset:
    """Resolve either layout; raises ``FileNotFoundError`` when neither is there."""
    root = Path(root).resolve()
    if _class_folders(root / "train"):
        train = _scan(root / "train")
        test = _scan(root / "test")
        return Dataset(root, "split", train, test)
    candidate = root
    subdirs = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    if not _class_folders(root) and len(subdirs) == 1:
        candidate = subdirs[0]
    if _class_folders(candidate):
        train, test = stratified_split(_scan(candidate), test_fraction, seed)
        return Dataset(root, "single", train, test)
    raise FileNotFoundError(
        f"{root}: expected <root>/train/<class>/ and <root>/test/<class>/, or <root>/<class>/, "
        f"with class folders named {', '.join(LABELS)} (or in Devanagari)"
    )


def recorded_root(meta: dict, data: str | Path | None = None) -> Path:
    """The dataset a model's metadata was trained on: ``data`` if given, else ``DATA_HOME/<name>``.

    A multi-source model's data is the data home itself (:mod:`training.data.sources`).
    Metadata written before datasets were recorded by name still carries ``root``;
    its last folder is the name.
    """
    if data is not None:
        return Path(data)
    recorded = meta["dataset"]
    if recorded.get("layout") == "sources":  # a multi-source model: the data home holding them
        return DATA_HOME
    name = recorded.get("name") or Path(recorded["root"]).name
    return DATA_HOME / name


def dataset_record(dataset: dict) -> dict:
    """A run's dataset block as shipped metadata records it: by folder name, never this machine's path.

    :func:`recorded_root` finds it again as ``DATA_HOME/<name>`` (``--data`` overrides).
    """
    record = {k: v for k, v in dataset.items() if k != "root"}
    if "name" not in record and dataset.get("root"):
        record["name"] = Path(dataset["root"]).name
    return record
