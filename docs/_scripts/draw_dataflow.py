"""Draw the NaLSuper data-flow diagram with matplotlib (no graphviz needed).

Usage: ``python docs/_scripts/draw_dataflow.py OUT.png``. ``docs/conf.py`` runs it when
the PNG is missing or older than this script. The output is deterministic (no
timestamp in the PNG metadata).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

BOX = {"boxstyle": "round,pad=0.02,rounding_size=0.08", "linewidth": 1.2}


def box(ax, x, y, w, h, text, color, fontsize=9.5):  # type: ignore[no-untyped-def]
    ax.add_patch(FancyBboxPatch((x, y), w, h, facecolor=color, edgecolor="#333333", **BOX))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def arrow(ax, a, b, style="-|>", color="#333333", rad=0.0):  # type: ignore[no-untyped-def]
    ax.add_patch(
        FancyArrowPatch(
            a, b, arrowstyle=style, mutation_scale=12, color=color, lw=1.2,
            connectionstyle=f"arc3,rad={rad}",
        )
    )  # fmt: skip


def main(out: str) -> None:
    fig, ax = plt.subplots(figsize=(11.5, 4.6), dpi=110)
    ax.set_xlim(0, 11.5)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    img, txt, blk, tail = "#dbe9f6", "#fde2c8", "#e3f1dc", "#eadcf0"

    # text branch
    box(ax, 0.1, 3.55, 1.6, 0.7, 'prompt\n"normal light image"', txt, 8.5)
    box(ax, 2.0, 3.55, 1.75, 0.7, "frozen text encoder\n(CLIP / MiniLM)", txt, 8.5)
    box(ax, 4.05, 3.55, 1.9, 0.7, "PromptBank\n(encode once, in state_dict)", txt, 8)
    arrow(ax, (1.7, 3.9), (2.0, 3.9))
    arrow(ax, (3.75, 3.9), (4.05, 3.9))
    ax.text(
        6.1,
        3.75,
        "text tokens (B, L, D) + padding mask,\nthe same for every block",
        fontsize=8.5,
        va="center",
        color="#b35900",
    )

    # image branch
    box(ax, 0.1, 1.55, 1.3, 0.7, "low-light\nimage (B,3,H,W)", img, 8.5)
    box(ax, 1.7, 1.55, 1.05, 0.7, "3×3 conv\nstem 3→C", img, 8.5)
    arrow(ax, (1.4, 1.9), (1.7, 1.9))

    # RTFB chain
    xs = [3.1, 5.0, 7.2]
    labels = ["RTFB 1", "RTFB 2", "RTFB N"]
    for x, lab in zip(xs, labels):
        ax.add_patch(FancyBboxPatch((x, 1.2), 1.6, 1.4, facecolor=blk, edgecolor="#333333", **BOX))
        ax.text(x + 0.8, 2.43, lab, ha="center", fontsize=9, weight="bold")
        ax.text(x + 0.8, 2.05, "conv-act-conv (+skip)", ha="center", fontsize=7)
        ax.text(x + 0.8, 1.75, "TCM  (cross-attn)", ha="center", fontsize=7.5, color="#b35900")
        ifa = "IFA: CA → PA → fusion" if lab == "RTFB N" else "IFA: CA → PA"
        ax.text(x + 0.8, 1.42, ifa, ha="center", fontsize=7.5, color="#2d6a2d")
        arrow(ax, (x + 0.8, 3.5), (x + 0.8, 2.62), color="#b35900")
    ax.plot([3.9, 7.95], [3.5, 3.5], color="#b35900", lw=1.2)
    ax.plot([5.0, 5.0], [3.55, 3.5], color="#b35900", lw=1.2)
    arrow(ax, (2.75, 1.9), (3.1, 1.9))
    arrow(ax, (4.7, 1.9), (5.0, 1.9))
    ax.text(6.95, 1.9, "…", fontsize=14, ha="center", va="center")
    arrow(ax, (6.6, 1.9), (6.75, 1.9))
    arrow(ax, (7.1, 1.9), (7.2, 1.9))

    # level taps to fusion
    box(
        ax,
        8.15,
        0.15,
        1.6,
        0.8,
        "RTFB N's IFA fuses:\nN×N layer attention,\n1×1 conv N·C → C",
        tail,
        7.5,
    )
    for x in xs:
        arrow(ax, (x + 0.8, 1.2), (8.6 + (x - 3.1) * 0.12, 0.95), color="#6a3d7a", rad=0.12)
    box(ax, 9.1, 1.55, 0.85, 0.7, "3×3 conv\nC→3", tail, 8)
    arrow(ax, (8.95, 0.95), (9.5, 1.55), color="#6a3d7a")
    ax.add_patch(plt.Circle((10.3, 1.9), 0.17, facecolor="white", edgecolor="#333333"))
    ax.text(10.3, 1.9, "+", ha="center", va="center", fontsize=12)
    arrow(ax, (9.95, 1.9), (10.13, 1.9))
    box(ax, 10.6, 1.55, 0.85, 0.7, "enhanced\nimage", img, 8)
    arrow(ax, (10.47, 1.9), (10.6, 1.9))
    # global residual
    ax.plot([0.75, 0.75], [1.55, 0.05], color="#1f5f99", lw=1.1, ls="--")
    ax.plot([0.75, 10.3], [0.05, 0.05], color="#1f5f99", lw=1.1, ls="--")
    arrow(ax, (10.3, 0.05), (10.3, 1.73), color="#1f5f99")
    ax.text(4.5, 0.12, "global residual: output = image + tail(fused)", fontsize=8, color="#1f5f99")
    fig.tight_layout(pad=0.2)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dataflow.png")
