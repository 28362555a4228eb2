"""The dataset kinds and folder layouts, as plain constants (no torch import).

The CLI's parsers and :class:`~textrestore.train.TrainConfig` read these names without
importing torch; :class:`~textrestore.data.PairedImageFolder` and
:func:`~textrestore.data.build_dataset` use them.
"""

from __future__ import annotations

__all__ = ["LAYOUTS", "LAYOUT_DIRS", "SPLITS", "DATASET_KINDS"]

#: Folder layouts :class:`PairedImageFolder` knows.
LAYOUTS: tuple[str, ...] = ("lol_v1", "lol_v2_real", "lol_v2_synthetic", "generic")

#: layout -> split -> candidate (low folder, high folder) pairs relative to the root; the
#: first candidate whose folders exist is used (the first one is named in errors).
LAYOUT_DIRS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "lol_v1": {
        "train": (("our485/low", "our485/high"),),
        "test": (("eval15/low", "eval15/high"),),
    },
    "lol_v2_real": {
        "train": (
            ("Train/Low", "Train/Normal"),
            ("Real_captured/Train/Low", "Real_captured/Train/Normal"),
        ),
        "test": (
            ("Test/Low", "Test/Normal"),
            ("Real_captured/Test/Low", "Real_captured/Test/Normal"),
        ),
    },
    "lol_v2_synthetic": {
        "train": (("Train/Low", "Train/Normal"), ("Synthetic/Train/Low", "Synthetic/Train/Normal")),
        "test": (("Test/Low", "Test/Normal"), ("Synthetic/Test/Low", "Synthetic/Test/Normal")),
    },
    "generic": {"train": (("low", "high"),), "test": (("low", "high"),)},
}

#: Accepted ``split`` values and the folder split they read.
SPLITS: dict[str, str] = {"train": "train", "test": "test", "val": "test"}

#: Kinds :func:`~textrestore.data.build_dataset` knows: the folder layouts, ``synthetic``
#: and ``photos``.
DATASET_KINDS: tuple[str, ...] = (*LAYOUTS, "synthetic", "photos")
