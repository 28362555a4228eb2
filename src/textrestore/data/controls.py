"""Language-labelled targets: a vocabulary of controls, each a deterministic edit of the reference.

A *control* is what a prompt asks for: an exposure level relative to the normally exposed
reference (in EV, with a highlight roll-off when brighter), a colour shift (warmer or
cooler light, in linear light), or how much of the input's noise to keep (none, or a
little grain). ``"normal light image"`` is the reference itself. Each control has several
wordings (paraphrases); :data:`HELD_OUT` wordings are never trained and serve to check
that the model follows the meaning of a prompt, not its exact words.

Example:
    >>> import torch
    >>> ref = torch.full((1, 3, 4, 4), 0.4)
    >>> brighter = make_target(ref, CONTROLS["brighter"])
    >>> bool(brighter.mean() > ref.mean()), torch.equal(make_target(ref, CONTROLS["normal"]), ref)
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .degradation import linear_to_srgb, srgb_to_linear

__all__ = [
    "Control",
    "CONTROLS",
    "EXPOSURE_LEVELS",
    "TRAIN_PROMPTS",
    "HELD_OUT",
    "DEFAULT_PROMPT",
    "make_target",
    "prompt_control",
    "sample_prompt",
    "highlight_rolloff",
    "exposure_ev",
]

DEFAULT_PROMPT = "normal light image"

#: Linear-light RGB gains of the "warmer" edit ("cooler" uses the inverse).
_WARM = (1.12, 1.0, 0.84)
#: Fraction of the input's remaining noise that "keep a little grain" keeps, and its cap
#: (standard deviation of the kept grain in sRGB).
_GRAIN, _GRAIN_MAX_STD = 0.3, 0.03


@dataclass(frozen=True)
class Control:
    """One thing a prompt can ask for.

    Attributes:
        name: identifier (``"brighter"``).
        ev: exposure change of the target relative to the reference, in stops.
        warmth: +1 warmer, -1 cooler, 0 neutral.
        grain: keep a little of the input's noise.
        prompts: trained wordings.
        held_out: wordings never trained (evaluation of paraphrase generalisation).
    """

    name: str
    ev: float = 0.0
    warmth: int = 0
    grain: bool = False
    prompts: tuple[str, ...] = ()
    held_out: tuple[str, ...] = ()


_BASE: tuple[Control, ...] = (
    Control("normal", 0.0, prompts=(
        DEFAULT_PROMPT, "a normally exposed photo", "correct the exposure",
        "natural brightness", "make it look like daylight",
    ), held_out=("properly exposed picture", "fix the lighting")),
    Control("night", -1.6, prompts=(
        "keep the night mood", "keep it dark and moody", "a dim evening atmosphere",
        "only lift the shadows a little",
    ), held_out=("preserve the darkness of the night",)),
    Control("slightly_brighter", -0.8, prompts=(
        "slightly brighter", "a little brighter", "brighten it slightly", "a touch more light",
    ), held_out=("just a bit lighter",)),
    Control("brighter", 0.6, prompts=(
        "brighter", "make it brighter", "brighten the photo", "more light",
    ), held_out=("a lighter image",)),
    Control("much_brighter", 1.2, prompts=(
        "much brighter", "very bright image", "make it a lot brighter", "as bright as possible",
    ), held_out=("greatly increase the brightness",)),
    Control("warmer", 0.0, warmth=1, prompts=(
        "warmer", "warmer colours", "make it warm", "golden warm tones",
    ), held_out=("a warmer colour temperature",)),
    Control("cooler", 0.0, warmth=-1, prompts=(
        "cooler", "cooler colours", "make it cold and blue", "cool tones",
    ), held_out=("a cooler colour temperature",)),
    Control("neutral", 0.0, prompts=(
        "neutral white balance", "remove the colour cast", "natural colours",
    ), held_out=("correct the white balance",)),
    Control("denoise", 0.0, prompts=(
        "remove all noise", "clean noise-free image", "denoise completely",
    ), held_out=("smooth out the noise",)),
    Control("grain", 0.0, grain=True, prompts=(
        "keep a little grain", "leave some film grain", "light denoising only",
    ), held_out=("keep some texture of the noise",)),
)  # fmt: skip


def _combos() -> tuple[Control, ...]:
    out = []
    for level, ev, words in (
        ("slightly_brighter", -0.8, ("a bit brighter", "slightly brighter")),
        ("brighter", 0.6, ("brighter",)),
        ("much_brighter", 1.2, ("much brighter",)),
    ):
        for warmth, colour in ((1, "warmer"), (-1, "cooler")):
            prompts = tuple(f"{w} and {colour}" for w in words) + tuple(
                f"{w}, {colour}" for w in words
            )
            out.append(Control(f"{level}+{colour}", ev, warmth=warmth, prompts=prompts))
    return tuple(out)


#: Every control by name: exposure levels, colour, noise and exposure+colour combinations.
CONTROLS: dict[str, Control] = {c.name: c for c in (*_BASE, *_combos())}
#: The exposure controls in increasing order of brightness.
EXPOSURE_LEVELS: tuple[str, ...] = (
    "night",
    "slightly_brighter",
    "normal",
    "brighter",
    "much_brighter",
)
#: Every trained wording.
TRAIN_PROMPTS: tuple[str, ...] = tuple(p for c in CONTROLS.values() for p in c.prompts)
#: Held-out wording → control name (never trained).
HELD_OUT: dict[str, str] = {p: c.name for c in CONTROLS.values() for p in c.held_out}
_BY_PROMPT: dict[str, str] = {p: c.name for c in CONTROLS.values() for p in c.prompts}

#: Probability of each group of controls when a prompt is drawn for a training sample.
_GROUPS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.35, ("normal",)),
    (0.30, ("night", "slightly_brighter", "brighter", "much_brighter")),
    (0.12, ("warmer", "cooler", "neutral")),
    (0.10, ("denoise", "grain")),
    (0.13, tuple(c.name for c in _combos())),
)


def prompt_control(prompt: str) -> Control:
    """The control a trained or held-out wording asks for.

    Raises:
        KeyError: the prompt is not in the vocabulary (the message lists some known ones).
    """
    name = _BY_PROMPT.get(prompt) or HELD_OUT.get(prompt)
    if name is None:
        raise KeyError(
            f"prompt {prompt!r} is not in the control vocabulary; known prompts include "
            f"{list(TRAIN_PROMPTS[:8])}"
        )
    return CONTROLS[name]


def sample_prompt(generator: torch.Generator) -> str:
    """Draw a trained wording: a group of controls, a control, then one of its wordings."""
    groups = torch.tensor([p for p, _ in _GROUPS], dtype=torch.float64)
    names = _GROUPS[int(torch.multinomial(groups, 1, generator=generator))][1]
    control = CONTROLS[names[int(torch.randint(len(names), (), generator=generator))]]
    return control.prompts[int(torch.randint(len(control.prompts), (), generator=generator))]


def highlight_rolloff(x: Tensor, knee: float = 0.6) -> Tensor:
    """Identity below ``knee``, then an exponential shoulder that approaches 1 (C¹ smooth).

    Example:
        >>> import torch
        >>> y = highlight_rolloff(torch.tensor([0.3, 0.6, 2.0, 100.0]))
        >>> [round(v, 3) for v in y.tolist()]
        [0.3, 0.6, 0.988, 1.0]
    """
    over = (x - knee).clamp_min(0.0) / (1.0 - knee)
    return torch.where(x <= knee, x, knee + (1.0 - knee) * (1.0 - torch.exp(-over)))


def make_target(
    reference: Tensor, control: Control, low: Tensor | None = None, gain: Tensor | None = None
) -> Tensor:
    """The target of ``control`` for a normally exposed ``reference`` (B, 3, H, W) sRGB.

    Exposure and colour are edited in linear light; brighter levels roll off their
    highlights instead of clipping. ``grain`` keeps a fraction of the input's noise, which
    needs the degraded ``low`` image and the linear ``gain`` (B, 3, H, W) that brings it
    back to the reference's exposure (:meth:`~textrestore.data.degradation.DegradationParams.gain_map`).

    Returns:
        (B, 3, H, W) in [0, 1]; exactly ``reference`` for the ``normal``-like controls.
    """
    if control.ev == 0.0 and control.warmth == 0 and not control.grain:
        return reference
    lin = srgb_to_linear(reference)
    if control.warmth:
        warm = torch.tensor(_WARM, dtype=lin.dtype, device=lin.device)
        lin = lin * (warm if control.warmth > 0 else 1.0 / warm)[None, :, None, None]
    if control.ev > 0:
        lin = highlight_rolloff(lin * 2.0**control.ev)
    elif control.ev < 0:
        lin = lin * 2.0**control.ev
    out = linear_to_srgb(lin)
    if control.grain:
        if low is None or gain is None:
            raise ValueError("make_target: the grain control needs low= and gain=")
        up = linear_to_srgb(srgb_to_linear(low) * gain)
        noise = up - reference
        std = noise.flatten(1).std(dim=1).clamp_min(1e-6)
        k = torch.clamp(_GRAIN_MAX_STD / std, max=_GRAIN)[:, None, None, None]
        out = (out + k * noise).clamp(0.0, 1.0)
    return out


def exposure_ev(a: Tensor, b: Tensor) -> Tensor:
    """Exposure difference in EV between two sRGB batches: log2 of their mean linear light."""
    la = srgb_to_linear(a).mean(dim=(1, 2, 3)).clamp_min(1e-8)
    lb = srgb_to_linear(b).mean(dim=(1, 2, 3)).clamp_min(1e-8)
    return torch.log2(la / lb)
