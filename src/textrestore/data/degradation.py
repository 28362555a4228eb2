"""One low-light degradation model, in linear light, vectorised over a batch in torch.

From a normally exposed sRGB photo ``I`` (B, 3, H, W) in [0, 1], per sample:

1. **unprocess** (Brooks et al., "Unprocessing images for learned raw denoising",
   CVPR 2019): invert the tone curve (smoothstep) and the display gamma (2.2), giving
   linear light;
2. **exposure drop** of ``stops`` ~ U(1, 7) (``2^-stops``);
3. **uneven illumination**: a smooth field in (0, 1] — vignetting, a lamp that falls off
   into shadow, or side light (a gradient) — or none;
4. **colour of the light**: per-channel gains of a tungsten, sodium, LED or blue-hour
   source mixed with white by a random strength, of which the camera's white balance
   removes only a part;
5. **sensor noise**, heteroscedastic Poisson–Gaussian: variance ``shot · x + read²``
   with ``shot`` log-uniform over [1e-4, 1.2e-2] and ``read`` tied to it by Brooks et al.'s
   log-linear fit (or no noise at all for some samples);
6. **back to sRGB** (gamma, smoothstep), clipped, **8-bit** and sometimes **JPEG**.

A fraction ``well_exposed`` of the samples keep their exposure, light and colour (only
the mildest noise and the 8-bit step): their reference is the input itself, so a model
learns not to brighten what is already bright.

Everything random is drawn from one ``torch.Generator`` per sample, so a sample depends
only on its seed; :func:`degrade` returns the parameters with the images.

Example:
    >>> import torch
    >>> clean = torch.rand(2, 3, 16, 16)
    >>> low, params = degrade(clean, seeds=[0, 1])
    >>> low.shape, params.stops.shape, bool(low.mean() < clean.mean())
    (torch.Size([2, 3, 16, 16]), torch.Size([2]), True)
    >>> torch.equal(degrade(clean, seeds=[0, 1])[0], low)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from .._checks import check_image_batch

__all__ = [
    "DegradationConfig",
    "DegradationParams",
    "LIGHT_SOURCES",
    "ILLUMINATIONS",
    "FAMILIES",
    "degrade",
    "srgb_to_linear",
    "linear_to_srgb",
    "illumination_field",
]

#: Linear-light RGB gains of common light sources (green = 1): what a white wall reflects.
LIGHT_SOURCES: dict[str, tuple[float, float, float]] = {
    "white": (1.0, 1.0, 1.0),
    "tungsten": (1.45, 1.0, 0.55),  # ~2700 K incandescent
    "sodium": (1.8, 1.0, 0.25),  # low-pressure/high-pressure sodium street light
    "led": (0.92, 1.0, 1.12),  # cool-white LED
    "blue_hour": (0.65, 1.0, 1.55),  # twilight sky light
}
#: Kinds of spatially varying illumination (index = ``DegradationParams.illumination``).
ILLUMINATIONS: tuple[str, ...] = ("even", "vignette", "lamp", "side")

_GAMMA = 2.2


def srgb_to_linear(x: Tensor) -> Tensor:
    """Unprocess: inverse smoothstep tone curve, then the display gamma (Brooks et al.).

    Example:
        >>> import torch
        >>> x = torch.linspace(0, 1, 5)
        >>> torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
        True
    """
    x = x.clamp(0.0, 1.0)
    untoned = 0.5 - torch.sin(torch.asin(1.0 - 2.0 * x) / 3.0)
    return untoned.clamp_min(1e-8) ** _GAMMA


def linear_to_srgb(x: Tensor) -> Tensor:
    """Display gamma then the smoothstep tone curve; input clipped to [0, 1]."""
    g = x.clamp(1e-8, 1.0) ** (1.0 / _GAMMA)
    return (3.0 * g**2 - 2.0 * g**3).clamp(0.0, 1.0)


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges and probabilities of the degradation (defaults: the training mix).

    Attributes:
        stops: range of the exposure drop in stops (EV).
        well_exposed: probability that a sample is left well exposed (identity target).
        illumination: probabilities of ``even``, ``vignette``, ``lamp`` and ``side`` light.
        floor: range of the darkest level of an uneven illumination field (fraction of its
            brightest).
        light: probabilities of each :data:`LIGHT_SOURCES` entry.
        cast_strength: range of how far the light's colour goes from white (0: white).
        white_balance: range of the fraction of the cast the camera's white balance removes.
        noise_free: probability of no sensor noise.
        shot: log-uniform range of the shot-noise gain (variance per unit of signal).
        jpeg: probability of JPEG compression after the 8-bit step.
        jpeg_quality: range of the JPEG quality.
        quantize: 8-bit quantisation of the result.
    """

    stops: tuple[float, float] = (1.0, 7.0)
    well_exposed: float = 0.1
    illumination: tuple[float, float, float, float] = (0.4, 0.2, 0.2, 0.2)
    floor: tuple[float, float] = (0.05, 0.5)
    light: tuple[float, ...] = (0.45, 0.15, 0.15, 0.1, 0.15)
    cast_strength: tuple[float, float] = (0.3, 1.0)
    white_balance: tuple[float, float] = (0.0, 0.7)
    noise_free: float = 0.15
    shot: tuple[float, float] = (1e-4, 1.2e-2)
    jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (60, 95)
    quantize: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("well_exposed", "noise_free", "jpeg") and not 0.0 <= value <= 1.0:
                raise ValueError(f"DegradationConfig.{f.name}: expected a probability, got {value}")
            if isinstance(value, tuple) and f.name not in ("illumination", "light"):
                lo, hi = value
                if not lo <= hi:
                    raise ValueError(
                        f"DegradationConfig.{f.name}: expected low <= high, got {value}"
                    )
        for name, probs, n in (
            ("illumination", self.illumination, len(ILLUMINATIONS)),
            ("light", self.light, len(LIGHT_SOURCES)),
        ):
            if len(probs) != n or min(probs) < 0 or sum(probs) <= 0:
                raise ValueError(
                    f"DegradationConfig.{name}: expected {n} non-negative probabilities, "
                    f"got {probs}"
                )
        if self.shot[0] <= 0:
            raise ValueError(f"DegradationConfig.shot: expected values > 0, got {self.shot}")


#: Named evaluation families (each a :class:`DegradationConfig`); ``training`` is the mix.
FAMILIES: dict[str, DegradationConfig] = {
    "training": DegradationConfig(),
    "moderate_noise": DegradationConfig(
        stops=(2.0, 4.0), well_exposed=0.0, illumination=(1, 0, 0, 0), light=(1, 0, 0, 0, 0),
        noise_free=0.0, shot=(1e-3, 3e-3), jpeg=0.0,
    ),
    "heavy_noise": DegradationConfig(
        stops=(3.0, 5.0), well_exposed=0.0, illumination=(1, 0, 0, 0), light=(1, 0, 0, 0, 0),
        noise_free=0.0, shot=(6e-3, 1.2e-2), jpeg=0.0,
    ),
    "uneven_light": DegradationConfig(
        stops=(1.0, 3.0), well_exposed=0.0, illumination=(0, 0.2, 0.5, 0.3), floor=(0.05, 0.25),
        light=(1, 0, 0, 0, 0), noise_free=0.5, shot=(1e-4, 1e-3), jpeg=0.0,
    ),
    "colour_cast": DegradationConfig(
        stops=(1.5, 3.5), well_exposed=0.0, illumination=(1, 0, 0, 0), light=(0, 0.3, 0.3, 0.1, 0.3),
        cast_strength=(0.6, 1.0), white_balance=(0.0, 0.3), noise_free=0.5, shot=(1e-4, 1e-3),
        jpeg=0.0,
    ),
    "well_exposed": DegradationConfig(well_exposed=1.0, jpeg=0.0),
}  # fmt: skip


@dataclass(frozen=True)
class DegradationParams:
    """What :func:`degrade` drew, one entry per sample (all tensors of length B).

    Attributes:
        stops: exposure drop in EV (0 for well-exposed samples).
        illumination: index into :data:`ILLUMINATIONS`.
        light: index into the keys of :data:`LIGHT_SOURCES`.
        gains: (B, 3) linear RGB gains left in the image after white balance.
        shot: shot-noise gain (0 without noise).
        read: read-noise standard deviation (0 without noise).
        jpeg_quality: JPEG quality (0: not compressed).
        well_exposed: bool, the sample was left well exposed.
        field: (B, H, W) illumination field (1 where the light is even).
    """

    stops: Tensor
    illumination: Tensor
    light: Tensor
    gains: Tensor
    shot: Tensor
    read: Tensor
    jpeg_quality: Tensor
    well_exposed: Tensor
    field: Tensor

    def gain_map(self) -> Tensor:
        """(B, 3, H, W) linear gain that undoes exposure, illumination and colour."""
        scale = torch.pow(2.0, -self.stops)[:, None, None, None]
        return 1.0 / (scale * self.field[:, None] * self.gains[:, :, None, None]).clamp_min(1e-8)

    def select(self, index: int) -> DegradationParams:
        """The parameters of one sample, as a batch of one."""
        return replace(
            self, **{f.name: getattr(self, f.name)[index : index + 1] for f in fields(self)}
        )


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def _choice(g: torch.Generator, probs: Sequence[float]) -> int:
    p = torch.tensor(probs, dtype=torch.float64)
    return int(torch.multinomial(p / p.sum(), 1, generator=g))


def illumination_field(
    kind: int, height: int, width: int, floor: float, g: torch.Generator
) -> Tensor:
    """A smooth (H, W) illumination field in [floor, 1] of one :data:`ILLUMINATIONS` kind.

    Example:
        >>> import torch
        >>> f = illumination_field(2, 8, 12, 0.1, torch.Generator().manual_seed(0))
        >>> f.shape, bool(f.min() >= 0.1 - 1e-6), bool(f.max() <= 1.0 + 1e-6)
        (torch.Size([8, 12]), True, True)
    """
    ys = torch.linspace(-1.0, 1.0, height)[:, None].expand(height, width)
    xs = torch.linspace(-1.0, 1.0, width)[None, :].expand(height, width)
    aspect = width / max(height, 1)
    xs = xs * max(aspect, 1.0)
    ys = ys * max(1.0 / aspect, 1.0)
    if kind == 0:
        return torch.ones(height, width)
    if kind == 1:  # vignetting: cos^4-like radial fall-off from a slightly shifted centre
        cx, cy = _uniform(g, -0.3, 0.3), _uniform(g, -0.3, 0.3)
        r2 = (xs - cx) ** 2 + (ys - cy) ** 2
        shape = 1.0 / (1.0 + _uniform(g, 0.5, 2.0) * r2) ** 2
    elif kind == 2:  # a lamp: bright pool, inverse-square-like fall-off into shadow
        cx, cy = _uniform(g, -1.0, 1.0), _uniform(g, -1.0, 1.0)
        radius = _uniform(g, 0.2, 0.8)
        r2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / radius**2
        shape = 1.0 / (1.0 + r2)
    else:  # side light: a smooth gradient across the frame in a random direction
        angle = _uniform(g, 0.0, 2.0 * math.pi)
        t = xs * math.cos(angle) + ys * math.sin(angle)
        shape = torch.sigmoid(_uniform(g, 2.0, 6.0) * t)
    shape = (shape - shape.min()) / (shape.max() - shape.min()).clamp_min(1e-6)
    return floor + (1.0 - floor) * shape


def _jpeg(image: Tensor, quality: int) -> Tensor:
    """JPEG round trip of a (3, H, W) image in memory (Pillow's libjpeg, 4:2:0)."""
    import io

    import numpy as np
    from PIL import Image

    u8 = (image * 255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255.0


def degrade(
    images: Tensor,
    seeds: Sequence[int],
    config: DegradationConfig | None = None,
) -> tuple[Tensor, DegradationParams]:
    """Degrade a batch of normally exposed photos into low-light camera images.

    Args:
        images: (B, 3, H, W) float sRGB in [0, 1], the references.
        seeds: one seed per sample; all of that sample's draws come from it.
        config: ranges and probabilities (default: the training mix, :class:`DegradationConfig`).

    Returns:
        ``(low, params)``: (B, 3, H, W) float in [0, 1] (8-bit steps unless
        ``config.quantize`` is False) and the :class:`DegradationParams` drawn.

    Raises:
        ValueError: images not (B, 3, H, W), or ``len(seeds) != B``.
    """
    check_image_batch(images, "degrade images", 3)
    b, _, h, w = images.shape
    seeds = list(seeds)
    if len(seeds) != b:
        raise ValueError(f"degrade: expected {b} seeds (one per image), got {len(seeds)}")
    cfg = config or DegradationConfig()
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    sources = list(LIGHT_SOURCES.values())
    stops, illum, light, gains, shot, read, quality, well = ([] for _ in range(8))
    fields_: list[Tensor] = []
    for g in gens:
        is_well = _uniform(g, 0.0, 1.0) < cfg.well_exposed
        s = 0.0 if is_well else _uniform(g, *cfg.stops)
        kind = 0 if is_well else _choice(g, cfg.illumination)
        floor = _uniform(g, *cfg.floor)
        fields_.append(illumination_field(kind, h, w, floor, g))
        src = 0 if is_well else _choice(g, cfg.light)
        strength = _uniform(g, *cfg.cast_strength)
        kept = 1.0 - _uniform(g, *cfg.white_balance)
        base = torch.tensor(sources[src], dtype=torch.float32)
        gain = 1.0 + strength * kept * (base - 1.0)
        noisy = _uniform(g, 0.0, 1.0) >= cfg.noise_free
        log_shot = _uniform(g, math.log(cfg.shot[0]), math.log(cfg.shot[1]))
        if is_well:
            log_shot = math.log(cfg.shot[0])
        log_read = 2.18 * log_shot + 1.2 + 0.26 * float(torch.randn((), generator=g))
        q = int(round(_uniform(g, *cfg.jpeg_quality))) if _uniform(g, 0, 1) < cfg.jpeg else 0
        stops.append(s)
        illum.append(kind)
        light.append(src)
        gains.append(gain)
        shot.append(math.exp(log_shot) if noisy else 0.0)
        read.append(math.sqrt(math.exp(log_read)) if noisy else 0.0)
        quality.append(q)
        well.append(is_well)
    params = DegradationParams(
        stops=torch.tensor(stops),
        illumination=torch.tensor(illum),
        light=torch.tensor(light),
        gains=torch.stack(gains),
        shot=torch.tensor(shot),
        read=torch.tensor(read),
        jpeg_quality=torch.tensor(quality),
        well_exposed=torch.tensor(well),
        field=torch.stack(fields_),
    )
    x = images.float()
    lin = srgb_to_linear(x)
    scale = torch.pow(2.0, -params.stops)[:, None, None, None]
    dark = lin * scale * params.field[:, None] * params.gains[:, :, None, None]
    # Poisson–Gaussian noise: variance shot·x + read², one field per sample's generator.
    normal = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])
    var = (
        params.shot[:, None, None, None] * dark.clamp_min(0) + params.read[:, None, None, None] ** 2
    )
    noisy_lin = dark + var.sqrt() * normal
    low = linear_to_srgb(noisy_lin)
    if cfg.quantize:
        low = torch.round(low * 255.0) / 255.0
    for i, q in enumerate(quality):
        if q:
            low[i] = _jpeg(low[i], q)
    return low.to(images.dtype), params
