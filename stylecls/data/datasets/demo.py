"""The built-in demo: a procedurally generated style dataset, so the pipeline runs with no download.

Classes are textures defined by their statistics (stripes, checks, dots, hatching, waves, bricks,
rings, Voronoi cells, fine and coarse noise), each image with its own random angle, frequency and
phase. Domains are renderings of the same textures (colour photo-like, posterised palette, soft
watercolour, line-art sketch), so texture classification and leave-one-domain-out both mean
something. Everything is vectorised numpy and seeded, so every machine writes the same pixels.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from stylecls.data.catalog import Counts, Listing
from stylecls.data.paths import cache_root
from stylecls.data.registry import DatasetDef, register
from stylecls.data.scan import read_domains
from stylecls.recipes import Recipe

VERSION = 2
SEED = 0
SIZE = 64
PER_CELL = 60  # images per (domain, class)
TRAIN_PER_CELL = 48  # the fixed split: images 0..47 train, 48..59 val
CLASSES = ("bricks", "cells", "checks", "dots", "hatching", "noise_coarse", "noise_fine", "rings", "stripes", "waves")
DOMAINS = ("photo", "poster", "sketch", "watercolor")

def demo_root() -> Path:
    return cache_root() / "demo"


def _thin_lines(w: np.ndarray) -> np.ndarray:
    """1 on the lines w = integer + 0.5, falling off within a few percent of a period."""
    return np.exp(-(((w % 1) - 0.5) ** 2) / 0.004)


def _textures(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` grayscale textures of one class, values in [0, 1], shape (n, SIZE, SIZE)."""
    y, x = (np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE)[:, None]
    theta = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    u = x * np.cos(theta) + y * np.sin(theta)
    v = -x * np.sin(theta) + y * np.cos(theta)

    def freq(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, (n, 1, 1)).astype(np.float32)

    if kind == "stripes":
        f = np.sin(2 * np.pi * freq(3, 6) * u + phase)
    elif kind == "checks":
        k = freq(2.5, 4.5)
        f = np.sign(np.sin(2 * np.pi * k * u + phase)) * np.sign(np.sin(2 * np.pi * k * v))
    elif kind == "dots":
        k, r = freq(4, 7), freq(0.18, 0.32)
        du, dv = (k * u + phase) % 1 - 0.5, (k * v) % 1 - 0.5
        f = np.tanh((r - np.hypot(du, dv)) * 25)
    elif kind == "hatching":
        k = freq(7, 11)
        f = np.maximum(_thin_lines(k * u + phase), _thin_lines(k * v))
    elif kind == "waves":
        f = np.sin(2 * np.pi * (freq(3, 6) * u + freq(0.4, 0.8) * np.sin(2 * np.pi * freq(1.5, 3) * v)) + phase)
    elif kind == "bricks":
        k = freq(4, 6)
        row = np.floor(k * v + phase)
        f = np.maximum(_thin_lines(k * v + phase + 0.5), _thin_lines(k * u / 2 + row / 2))
    elif kind == "rings":
        cx, cy = freq(0.1, 0.9), freq(0.1, 0.9)
        f = np.sin(2 * np.pi * freq(5, 9) * np.hypot(x - cx, y - cy) + phase)
    elif kind == "cells":
        pts = rng.uniform(0, 1, (n, 14, 2, 1, 1)).astype(np.float32)
        d = np.sort(np.hypot(x - pts[:, :, 0], y - pts[:, :, 1]), axis=1)
        f = -np.tanh((d[:, 1] - d[:, 0]) * 40 - 0.6)
    elif kind in ("noise_fine", "noise_coarse"):
        sigma = 0.8 if kind == "noise_fine" else 4.0
        f = gaussian_filter(rng.standard_normal((n, SIZE, SIZE)).astype(np.float32), (0, sigma, sigma), mode="wrap")
    else:  # pragma: no cover - CLASSES and this function change together
        raise ValueError(kind)
    lo, hi = f.min(axis=(1, 2), keepdims=True), f.max(axis=(1, 2), keepdims=True)
    return ((f - lo) / np.maximum(hi - lo, 1e-6)).astype(np.float32)


def _colours(
    n: int, rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]
) -> np.ndarray:
    """``n`` random RGB colours (n, 3, 1, 1) from hue/saturation/value ranges."""
    h = rng.uniform(0, 1, n)
    s, v = rng.uniform(*saturation, n), rng.uniform(*value, n)
    k = (np.array([5, 3, 1])[None] + h[:, None] * 6) % 6
    rgb = v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)
    return rgb.astype(np.float32)[:, :, None, None]


def _render(domain: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render textures ``t`` (n, H, W) in [0, 1] as uint8 RGB (n, H, W, 3) in one domain's style."""
    n = len(t)
    t = t[:, None]
    if domain == "photo":
        a, b = _colours(n, rng, (0.2, 0.7), (0.15, 0.45)), _colours(n, rng, (0.2, 0.7), (0.6, 0.95))
        ramp = np.linspace(0.85, 1.15, SIZE, dtype=np.float32)[None, None, :, None]
        light = ramp ** rng.choice([-1, 1], (n, 1, 1, 1))  # light from the left or the right
        img = (a + t * (b - a)) * light + rng.normal(0, 0.03, (n, 3, SIZE, SIZE))
    elif domain == "poster":
        palette = np.stack([_colours(n, rng, (0.8, 1.0), (0.5, 1.0)) for _ in range(3)], 1)  # n,3(levels),3,1,1
        level = np.clip((t[:, 0] * 3).astype(int), 0, 2)  # n,H,W
        img = np.take_along_axis(palette[:, :, :, 0, 0][:, :, None, None, :], level[:, None, :, :, None], 1)
        img = img[:, 0].transpose(0, 3, 1, 2)
    elif domain == "watercolor":
        soft = gaussian_filter(t, (0, 0, 1.4, 1.4), mode="wrap")
        base = _colours(n, rng, (0.1, 0.35), (0.85, 1.0))
        tint = _colours(n, rng, (0.35, 0.7), (0.35, 0.65))
        img = base + 0.7 * soft * (tint - base)
    elif domain == "sketch":
        gy, gx = np.gradient(t[:, 0], axis=(1, 2))
        edge = np.hypot(gx, gy)
        edge = edge / np.maximum(np.percentile(edge, 97, axis=(1, 2), keepdims=True), 1e-6)
        ink = np.clip(edge, 0, 1)[:, None]
        paper = rng.uniform(0.9, 1.0, (n, 1, 1, 1)) + rng.normal(0, 0.02, (n, 1, SIZE, SIZE))
        img = np.repeat(paper * (1 - 0.85 * ink), 3, axis=1)
    else:  # pragma: no cover
        raise ValueError(domain)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


def generate(target: Path, seed: int = SEED) -> None:
    """Write the demo set into ``target`` (atomically: a temporary folder renamed into place).

    One writer at a time holds ``.demo.lock`` beside it; the writer removes the temporary folders a
    killed generation left (they are stale: their writer no longer holds the lock).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the set written
        if is_generated(target):
            return
        for stale in target.parent.glob(f".{target.name}-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        _write(target, seed)


def _write(target: Path, seed: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for ci, cls in enumerate(CLASSES):
            rng = np.random.default_rng([seed, VERSION, ci])
            textures = _textures(cls, PER_CELL * len(DOMAINS), rng)
            for di, domain in enumerate(DOMAINS):
                pixels = _render(domain, textures[di * PER_CELL : (di + 1) * PER_CELL], rng)
                out = tmp / domain / cls
                out.mkdir(parents=True)
                for i, img in enumerate(pixels):
                    Image.fromarray(img).save(out / f"{i:03d}.png", compress_level=1)
        (tmp / ".complete").write_text(f"{VERSION}\n")
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_generated(root: Path | None = None) -> bool:
    marker = (root or demo_root()) / ".complete"
    return marker.is_file() and marker.read_text().strip() == str(VERSION)


def read(root: Path, seed: int = 0) -> Listing:
    """The demo's images (generated on first use). ``seed`` is accepted for uniformity: the split is fixed."""
    if not is_generated(root):
        if root == demo_root():
            cache_root(create=True)  # a clear error for an unusable $STYLECLS_CACHE before generating
        generate(root)
    found = read_domains(root, DOMAINS, CLASSES, DATASET)
    splits = ["train" if int(Path(p).stem) < TRAIN_PER_CELL else "val" for p, _, _ in found.rows]
    cells = len(CLASSES) * PER_CELL
    expected = Counts(images=cells * len(DOMAINS), classes=len(CLASSES), domains={d: cells for d in DOMAINS})
    return Listing(found.rows, splits, CLASSES, DOMAINS, expected, "official", found.warnings)


DATASET = register(DatasetDef(
    name="demo",
    title="demo dataset",
    help="generated textures in 4 styles, no download (the quick start)",
    read=read,
    folder=None,
    layout=f"<cache>/demo/<domain>/<class>/NNN.png, generated on first use ({len(CLASSES)} classes x "
    f"{len(DOMAINS)} domains x {PER_CELL} images, {SIZE} px)",
    source="stylecls itself (generated, no download)",
    domains=DOMAINS,
    classes=CLASSES,
    # 2,400 procedurally generated 64 px textures; CIFAR ResNet-20 at 32 px trains in ~1-2 min on 2 cores.
    # Crops below a third of the image lose the texture's frequency, which is what tells classes apart;
    # so does shrinking the 64 px images to 36 before cropping: the demo crops from the full 64 px.
    recipe=Recipe(arch="cifar_resnet20", img_size=32, epochs=10, batch_size=64, lr=0.1, weight_decay=5e-4,
                  warmup_epochs=1, label_smoothing=0.0, min_crop=0.35, pre_resize="original"),
    home=demo_root,
    generated=is_generated,
))  # fmt: skip
