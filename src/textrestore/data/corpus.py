"""A curated corpus of real, normally exposed photos that are available offline.

Sources: scikit-image's colour photos (ship with the package) and the *photographs* (not
the abstract or illustrated art) of four Debian wallpaper packages, installed with
``apt-get install plasma-workspace-wallpapers lomiri-wallpapers`` (``ukui-wallpapers``
and ``gnome-backgrounds`` were looked at: every image in them is abstract art, so none is
listed). Each entry says why it is in. :data:`VAL_PHOTOS` are held out for validation.

**Reserved for independent evaluation, never listed here:** scikit-learn's sample images,
matplotlib's sample data and the Debian package ``mate-backgrounds``.

Example:
    >>> [e.name for e in CORPUS if e.source == "skimage"][:3]
    ['astronaut', 'chelsea', 'coffee']
    >>> photos = corpus_photos("val", size=32, sources=("skimage",))
    >>> len(photos) >= 1, min(photos[0].shape[1:])
    (True, 32)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from .image_io import is_image_file, read_image
from .synthetic import _load_skimage, resize_short_side

__all__ = ["CorpusPhoto", "CORPUS", "VAL_PHOTOS", "RESERVED_FOR_EVALUATION", "corpus_photos"]

#: Never train, tune or validate on these: they are for independent evaluation.
RESERVED_FOR_EVALUATION: tuple[str, ...] = (
    "scikit-learn sample images (sklearn.datasets.load_sample_images)",
    "matplotlib sample data (matplotlib.cbook.get_sample_data)",
    "Debian package mate-backgrounds (/usr/share/backgrounds/mate/)",
)


@dataclass(frozen=True)
class CorpusPhoto:
    """One photo of the corpus.

    Attributes:
        name: short name (unique).
        source: ``"skimage"`` or the Debian package.
        path: ``skimage.data`` function name, or a file/folder path (a KDE wallpaper
            folder: its largest image is used).
        reason: why it is in the corpus (content, light, colour).
    """

    name: str
    source: str
    path: str
    reason: str


_PLASMA = "/usr/share/wallpapers"
_LOMIRI = "/usr/share/backgrounds"

CORPUS: tuple[CorpusPhoto, ...] = (
    CorpusPhoto("astronaut", "skimage", "astronaut", "portrait, skin tones, saturated flag"),
    CorpusPhoto("chelsea", "skimage", "chelsea", "cat fur: fine texture, warm indoor colours"),
    CorpusPhoto("coffee", "skimage", "coffee", "still life, strong warm colours, specular cup"),
    CorpusPhoto("rocket", "skimage", "rocket", "outdoor scene with sky and structure"),
    CorpusPhoto("motorcycle", "skimage", "stereo_motorcycle", "indoor, many colours and edges"),
    CorpusPhoto("BytheWater", "plasma-workspace-wallpapers", f"{_PLASMA}/BytheWater", "lake and pier, wide tonal range"),
    CorpusPhoto("ColdRipple", "plasma-workspace-wallpapers", f"{_PLASMA}/ColdRipple", "misty pier: low contrast, near-neutral"),
    CorpusPhoto("ColorfulCups", "plasma-workspace-wallpapers", f"{_PLASMA}/ColorfulCups", "saturated colours, repeated shapes"),
    CorpusPhoto("DarkestHour", "plasma-workspace-wallpapers", f"{_PLASMA}/DarkestHour", "blue dusk landscape: a normally exposed dark scene"),
    CorpusPhoto("EveningGlow", "plasma-workspace-wallpapers", f"{_PLASMA}/EveningGlow", "boats at sunset, warm sky, dark foreground"),
    CorpusPhoto("FallenLeaf", "plasma-workspace-wallpapers", f"{_PLASMA}/FallenLeaf", "close-up, shallow depth of field, warm"),
    CorpusPhoto("Grey", "plasma-workspace-wallpapers", f"{_PLASMA}/Grey", "black-and-white architecture: neutral colour, hard edges"),
    CorpusPhoto("Kite", "plasma-workspace-wallpapers", f"{_PLASMA}/Kite", "blue sky with clouds, smooth gradients"),
    CorpusPhoto("OneStandsOut", "plasma-workspace-wallpapers", f"{_PLASMA}/OneStandsOut", "moss: dense green texture"),
    CorpusPhoto("Path", "plasma-workspace-wallpapers", f"{_PLASMA}/Path", "forest: greens, shadows, fine detail"),
    CorpusPhoto("Volna", "plasma-workspace-wallpapers", f"{_PLASMA}/Volna", "aerial beach: sand and water colours"),
    CorpusPhoto("summer_1am", "plasma-workspace-wallpapers", f"{_PLASMA}/summer_1am", "lake at dusk: soft light, pastel sky"),
    CorpusPhoto("Bridge", "lomiri-wallpapers", f"{_LOMIRI}/Bridge_by_Sander_Klootwijk.jpg", "bridge over water, bright sky"),
    CorpusPhoto("Dragonfly", "lomiri-wallpapers", f"{_LOMIRI}/Dragonfly_by_Bolly.jpg", "leaves against the sky, backlight"),
    CorpusPhoto("Kleiber", "lomiri-wallpapers", f"{_LOMIRI}/Kleiber_by_Lukas_Baubkus.jpg", "bird on bark, bokeh"),
    CorpusPhoto("Picture_0B", "lomiri-wallpapers", f"{_LOMIRI}/Picture_0B_by_freespace.jpg", "red fruit on grey: saturated red"),
    CorpusPhoto("Picture_1A", "lomiri-wallpapers", f"{_LOMIRI}/Picture_1A_by_freespace.jpg", "paint brushes: many saturated colours"),
    CorpusPhoto("Wine", "lomiri-wallpapers", f"{_LOMIRI}/Wine_by_Jakkub_Mede.jpg", "indoor, window light, dark interior"),
    CorpusPhoto("aitzgorri", "lomiri-wallpapers", f"{_LOMIRI}/aitzgorri_by_Aitzol_Berasategi.jpg", "mountain landscape, autumn colours"),
    CorpusPhoto("analogpattern", "lomiri-wallpapers", f"{_LOMIRI}/analogpattern_by_Peter_Nerlich.jpg", "foliage bokeh texture"),
    CorpusPhoto("free", "lomiri-wallpapers", f"{_LOMIRI}/free_by_Peter_Nerlich.jpg", "indoor lamps and a bird: light sources in frame"),
    CorpusPhoto("friends", "lomiri-wallpapers", f"{_LOMIRI}/friends_by_Aitzol_Berasategi.jpg", "dogs at a door: fur, indoor/outdoor light"),
    CorpusPhoto("greentock", "lomiri-wallpapers", f"{_LOMIRI}/greentock_by_Peter_Nerlich.jpg", "clock face: neutral greys, green light"),
    CorpusPhoto("life", "lomiri-wallpapers", f"{_LOMIRI}/life_by_Aitzol_Berasategi.jpg", "stream in a forest: water, rocks, shade"),
    CorpusPhoto("picosdeeuropa", "lomiri-wallpapers", f"{_LOMIRI}/picosdeeuropa_by_Aitzol_Berasategi.jpg", "mountains, snow and sky"),
    CorpusPhoto("seeding", "lomiri-wallpapers", f"{_LOMIRI}/seeding_by_Clements_Engelhardt.jpg", "dandelions backlit by low sun"),
    CorpusPhoto("sunset", "lomiri-wallpapers", f"{_LOMIRI}/sunset_by_Aitzol_Berasategi.jpg", "sun in frame: very high dynamic range"),
)  # fmt: skip

#: Held out from training, used for validation (one skimage photo, three wallpapers).
VAL_PHOTOS: tuple[str, ...] = ("coffee", "EveningGlow", "Wine", "picosdeeuropa")


def _reserved_roots() -> list[Path]:
    """Folders of the photos reserved for evaluation (those that are installed)."""
    roots = [Path("/usr/share/backgrounds/mate")]
    for module, sub in (("sklearn.datasets", "images"), ("matplotlib", "mpl-data/sample_data")):
        try:
            mod = __import__(module, fromlist=["__file__"])
        except ImportError:
            continue
        roots.append(Path(str(mod.__file__)).resolve().parent / sub)
    return [r.resolve() for r in roots if r.exists()]


def _check_not_reserved(path: Path) -> None:
    real = path.resolve()
    for root in _reserved_roots():
        if real == root or root in real.parents or real in root.parents:
            raise ValueError(
                f"corpus_photos: {path} holds photos reserved for independent evaluation "
                f"({root}); never train or validate on them"
            )


def _resolve(entry: CorpusPhoto) -> Path:
    path = Path(entry.path)
    if path.is_dir():  # a KDE wallpaper package: contents/images/<W>x<H>.<ext>
        images = [p for p in (path / "contents" / "images").glob("*") if is_image_file(p)]
        if not images:
            raise FileNotFoundError(f"corpus: no images in {path}/contents/images")
        return max(images, key=lambda p: os.path.getsize(p))
    return path


def _load(entry: CorpusPhoto) -> list[Tensor]:
    if entry.source == "skimage":
        return _load_skimage(entry.path)
    return [read_image(_resolve(entry))]


def corpus_photos(
    split: str = "train",
    size: int | None = 512,
    *,
    sources: Sequence[str] | None = None,
    extra: Iterable[str | os.PathLike[str]] = (),
    missing: str = "skip",
) -> list[Tensor]:
    """Load the corpus photos of a split as (3, H, W) float tensors in [0, 1].

    Args:
        split: ``"train"`` (all but :data:`VAL_PHOTOS`), ``"val"`` or ``"all"``.
        size: resize so that the short side is ``size`` (None: original size).
        sources: keep only these sources (``"skimage"`` or a Debian package name).
        extra: user folders (or files) of normally exposed photos, added to ``"train"``.
        missing: ``"skip"`` photos whose package is not installed, or ``"raise"``.

    Raises:
        ValueError: unknown split or ``missing``, no photo found, or an ``extra`` path that
            holds (or lies inside) the photos reserved for evaluation.
        FileNotFoundError: a photo is missing and ``missing="raise"`` (names the package).
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"corpus_photos: split must be 'train', 'val' or 'all', got {split!r}")
    if missing not in ("skip", "raise"):
        raise ValueError(f"corpus_photos: missing must be 'skip' or 'raise', got {missing!r}")
    photos: list[Tensor] = []
    for entry in CORPUS:
        held = entry.name in VAL_PHOTOS
        if (split == "train" and held) or (split == "val" and not held):
            continue
        if sources is not None and entry.source not in sources:
            continue
        try:
            photos += _load(entry)
        except (FileNotFoundError, ImportError) as err:
            if missing == "raise":
                raise FileNotFoundError(
                    f"corpus photo {entry.name!r} not found ({err}); install it with "
                    f"`apt-get install {entry.source}`"
                    if entry.source != "skimage"
                    else f"corpus photo {entry.name!r} needs scikit-image ({err})"
                ) from err
    if split != "val":
        for item in extra:
            path = Path(item)
            _check_not_reserved(path)
            files = (
                sorted(p for p in path.rglob("*") if is_image_file(p)) if path.is_dir() else [path]
            )
            photos += [read_image(p) for p in files]
    if not photos:
        raise ValueError(
            f"corpus_photos: no photo found for split {split!r}; install scikit-image or "
            f"`apt-get install plasma-workspace-wallpapers lomiri-wallpapers`, or pass extra="
        )
    if size is not None:
        photos = [resize_short_side(p, size) for p in photos]
    return photos
