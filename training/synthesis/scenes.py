"""The plate detector's training scenes, made from the fitted plate photos.

Scenes (:meth:`SceneMaker.scene`) are drawn from the fitted photos with heavy
augmentation: quarter turns, perspective and rotation, scale from a distant
plate to a tight crop, light, blur, noise and JPEG; a second plate cut from
another photo or a synthetic plate (:mod:`training.synthesis.plates`) pasted in; and
views of the photos away from their plate, with no plate at all. Each scene
is what :func:`lpr.detection.letterbox` makes of an image, so the network
learns on the input the service gives it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from lpr.detection import PAD_VALUE, DetectorSpec
from training.data.photos import Photo, plate_crop

Box = tuple[float, float, float, float]


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3 × 3 projective map taking four points ``src`` to ``dst``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    coeffs = np.linalg.solve(np.array(rows, float), np.array(rhs, float))
    return np.append(coeffs, 1.0).reshape(3, 3)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    ones = np.ones((len(points), 1))
    mapped = np.hstack([points, ones]) @ matrix.T
    return mapped[:, :2] / mapped[:, 2:3]


def _corners(box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def _quarter_turn(image: Image.Image, boxes: list[Box], k: int) -> tuple[Image.Image, list[Box]]:
    """Rotate by ``k`` × 90° counter-clockwise, boxes with it."""
    for _ in range(k % 4):
        width = image.width
        image = image.transpose(Image.Transpose.ROTATE_90)
        boxes = [(y0, width - x1, y1, width - x0) for x0, y0, x1, y1 in boxes]
    return image, boxes


def _paste(canvas: Image.Image, patch: Image.Image, boxes: list[Box], rng: np.random.Generator) -> list[Box]:
    """Paste ``patch`` where it overlaps no box (a few tries), returning the boxes with its own added."""
    for _ in range(10):
        if patch.width >= canvas.width or patch.height >= canvas.height:
            return boxes
        x = int(rng.integers(0, canvas.width - patch.width))
        y = int(rng.integers(0, canvas.height - patch.height))
        new = (x, y, x + patch.width, y + patch.height)
        margin = 0.1 * max(patch.size)
        if all(
            new[2] + margin < b[0]
            or b[2] + margin < new[0]
            or new[3] + margin < b[1]
            or b[3] + margin < new[1]
            for b in boxes
        ):
            canvas.paste(patch, (x, y))
            return [*boxes, new]
    return boxes


def _between(rng: np.random.Generator, low: float, high: float) -> float:
    """Uniform in ``[low, high]``, or their middle when the range is empty."""
    return float(rng.uniform(low, high)) if high > low else (low + high) / 2


def _visible(box: Box, width: int, height: int) -> float:
    x0, y0, x1, y1 = box
    inside = max(0.0, min(x1, width) - max(x0, 0)) * max(0.0, min(y1, height) - max(y0, 0))
    area = (x1 - x0) * (y1 - y0)
    return inside / area if area > 0 else 0.0


class SceneMaker:
    """Draws training scenes from fitted photos and synthetic plates; everything from one seeded ``rng``."""

    def __init__(self, photos: Sequence[Photo], synthetic: Sequence[Image.Image], spec: DetectorSpec) -> None:
        self.spec = spec
        self.images = [p.image() for p in photos]
        self.boxes = [p.box for p in photos]
        self.plates = [plate_crop(p, im) for p, im in zip(photos, self.images, strict=True)]
        self.synthetic = list(synthetic)

    def _base(self, rng: np.random.Generator) -> tuple[Image.Image, list[Box]]:
        i = int(rng.integers(len(self.images)))
        canvas, boxes = self.images[i].copy(), [self.boxes[i]]
        plate_side = max(boxes[0][2] - boxes[0][0], boxes[0][3] - boxes[0][1])
        if rng.random() < 0.3:  # a second plate, cut from another photo, about as large
            j = int(rng.integers(len(self.plates)))
            patch = self.plates[j]
            k = int(rng.integers(4))
            patch, _ = _quarter_turn(patch, [], k)
            factor = plate_side * rng.uniform(0.5, 1.3) / max(patch.size)
            patch = patch.resize((max(8, round(patch.width * factor)), max(8, round(patch.height * factor))))
            boxes = _paste(canvas, patch, boxes, rng)
        if self.synthetic and rng.random() < 0.2:  # a synthetic plate
            patch = self.synthetic[int(rng.integers(len(self.synthetic)))]
            patch, _ = _quarter_turn(patch, [], int(rng.integers(4)))
            factor = plate_side * rng.uniform(0.5, 1.3) / max(patch.size)
            patch = patch.resize((max(8, round(patch.width * factor)), max(8, round(patch.height * factor))))
            boxes = _paste(canvas, patch, boxes, rng)
        return _quarter_turn(canvas, boxes, int(rng.integers(4)))

    def _window(
        self, rng: np.random.Generator, image: Image.Image, boxes: list[Box]
    ) -> tuple[np.ndarray, bool]:
        """Four corners (in ``image``) of the view, and whether it must hold no plate."""
        mode = rng.random()
        aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.7))))
        if mode < 0.12:  # a view away from the plates: nothing to find
            side = min(image.size) * rng.uniform(0.25, 0.7)
            w, h = side * aspect**0.5, side / aspect**0.5
            x = rng.uniform(0, max(1.0, image.width - w))
            y = rng.uniform(0, max(1.0, image.height - h))
            return _corners((x, y, x + w, y + h)), True
        target = boxes[int(rng.integers(len(boxes)))]
        bw, bh = target[2] - target[0], target[3] - target[1]
        if mode < 0.25:  # a tight crop: the plate and a small margin
            mx, my = bw * rng.uniform(0.0, 0.15), bh * rng.uniform(0.0, 0.15)
            return _corners((target[0] - mx, target[1] - my, target[2] + mx, target[3] + my)), False
        fill = float(np.exp(rng.uniform(np.log(0.07), np.log(0.7))))  # plate's side / view's side
        side = max(bw, bh) / fill
        # The view stays inside the photo where it can: a distant plate comes from the smaller
        # pasted plates, not from a photo floating in a padded void.
        w = min(max(side * aspect**0.5, bw * 1.05), max(image.width, bw * 1.05))
        h = min(max(side / aspect**0.5, bh * 1.05), max(image.height, bh * 1.05))
        x = _between(rng, max(target[2] - w, 0.0), min(target[0], image.width - w))
        y = _between(rng, max(target[3] - h, 0.0), min(target[1], image.height - h))
        return _corners((x, y, x + w, y + h)), False

    def scene(self, rng: np.random.Generator) -> tuple[np.ndarray, list[Box]]:
        """One letterboxed scene (uint8, side × side × 3) and its plate boxes in the square's pixels."""
        side = self.spec.side
        for _ in range(20):
            if self.synthetic and rng.random() < 0.06:  # a synthetic plate crop on its own
                image = self.synthetic[int(rng.integers(len(self.synthetic)))].copy()
                image, boxes = _quarter_turn(
                    image,
                    [(0, 0, image.width, image.height)],
                    int(rng.integers(4)) if rng.random() < 0.3 else 0,
                )
            else:
                image, boxes = self._base(rng)
            quad, empty = self._window(rng, image, boxes)
            # Perspective and a small rotation: jitter the view's corners, then turn them. Kept
            # small: the target is the turned plate's axis-aligned box, which a large turn makes
            # squarer and looser than any box a person draws.
            span = np.ptp(quad, axis=0)
            quad = quad + rng.uniform(-0.04, 0.04, size=(4, 2)) * span
            angle = np.radians(rng.uniform(-6, 6))
            centre = quad.mean(axis=0)
            turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            quad = (quad - centre) @ turn.T + centre
            w_view, h_view = np.ptp(quad[:, 0]), np.ptp(quad[:, 1])
            scale = side / max(w_view, h_view)
            out_w, out_h = max(8, round(w_view * scale)), max(8, round(h_view * scale))
            target = _corners((0, 0, out_w, out_h))
            to_view = _homography(quad, target)
            from_view = _homography(target, quad)
            mapped = []
            for box in boxes:
                points = _apply(to_view, _corners(box))
                mapped.append((*points.min(axis=0), *points.max(axis=0)))
            seen = [_visible(b, out_w, out_h) for b in mapped]
            if empty and any(v > 0 for v in seen):
                continue
            if any(0.02 < v < 0.85 for v in seen):
                continue  # a plate cut by the view's edge is neither a plate nor background
            kept = [
                (max(0.0, b[0]), max(0.0, b[1]), min(out_w, b[2]), min(out_h, b[3]))
                for b, v in zip(mapped, seen, strict=True)
                if v >= 0.85
            ]
            kept = [b for b in kept if b[2] - b[0] >= 4 and b[3] - b[1] >= 4]
            fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
            view = image.transform(
                (out_w, out_h),
                Image.Transform.PERSPECTIVE,
                tuple(from_view.ravel()[:8]),
                Image.Resampling.BILINEAR,
                fillcolor=fill,
            )
            view = _photometric(view, rng)
            square = np.full((side, side, 3), PAD_VALUE, dtype=np.uint8)
            square[:out_h, :out_w] = np.asarray(view)
            return square, kept
        raise RuntimeError("no scene could be drawn in 20 tries")


def _photometric(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Light, colour, blur, noise and JPEG, as phones and dusk give them."""
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.55, 1.4))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.6, 1.4))
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.8)))
    pixels = np.asarray(image, np.float32)
    pixels = pixels * rng.uniform(0.85, 1.15, size=3) + rng.normal(0, rng.uniform(0, 8), pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(25, 95)))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def targets(boxes: Sequence[Box], spec: DetectorSpec) -> np.ndarray:
    """The head's training target (grid × grid × 6): centre heatmap, dx, dy, log w, log h, centre mask.

    Each plate puts a Gaussian on the heatmap (spread by its size, as in
    CenterNet) with exactly 1 at its centre cell, where its offset and size
    are learnt.
    """
    grid, stride = spec.grid, spec.stride
    out = np.zeros((grid, grid, 6), dtype=np.float32)
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32) + 0.5
    for x0, y0, x1, y1 in boxes:
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        w, h = (x1 - x0), (y1 - y0)
        col, row = min(int(cx), grid - 1), min(int(cy), grid - 1)
        sx, sy = max(0.6, w / stride / 6), max(0.6, h / stride / 6)
        heat = np.exp(-((xs - cx) ** 2) / (2 * sx**2) - ((ys - cy) ** 2) / (2 * sy**2))
        out[..., 0] = np.maximum(out[..., 0], heat)
        out[row, col, 0] = 1.0
        out[row, col, 1:6] = (cx - col, cy - row, np.log(w / spec.side), np.log(h / spec.side), 1.0)
    return out
