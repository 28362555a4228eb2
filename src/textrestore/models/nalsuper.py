"""NaLSuper: Natural Language Supervision network for low-light enhancement (arXiv 2501.06546)."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from .._checks import check_image_batch
from ..layers import IFA, RTFB, CrossLayerAttention
from ..layers._fast import inference_fast_path
from ..layers.attention import cosine_from_gram
from ..layers.statistics import fixed_statistic
from ..text import PromptBank
from .base import TextGuidedModel, TextInput
from .registry import register_model

__all__ = ["NaLSuper", "nalsuper", "nalsuper_s", "nalsuper_t"]


class NaLSuper(TextGuidedModel):
    """Text-guided low-light enhancer.

    ``image → 3×3 conv stem → depth × RTFB(TCM, IFA) → 3×3 conv → + image``: the IFA of
    the last RTFB fuses the outputs of all blocks by cross-layer attention (the paper's
    level concatenation). The network never downsamples, so any H, W >= 1 works without
    padding.

    Text is looked up in the model's :class:`~textrestore.text.PromptBank`: each
    distinct prompt is encoded once by the attached text encoder and kept as a buffer
    in the ``state_dict``, so a saved model runs without any text encoder installed.

    Args:
        in_chans: image channels.
        dim: feature channels C.
        depth: number of RTFBs (15 in the paper).
        num_heads: TCM attention heads.
        text_dim: text token width D (512 for CLIP ViT-B/32, 384 for MiniLM).
        reduction: bottleneck ratio of the channel and pixel attention.
        act_layer: activation used throughout.
        init_values: initial LayerScale of the TCM updates.
        use_tcm: ``False`` builds the text-free "Base" model of the paper's ablation.
        use_ifa: ``False`` drops the channel and pixel attention inside every RTFB
            (nothing else).
        use_fusion: ``False`` drops the cross-layer fusion of the block outputs (the last
            block's IFA is built without ``num_levels``): the tail then reads the last
            block only (no level concatenation).
        layer_attention: ``False`` keeps the level concatenation + 1×1 conv but drops the
            cosine affinity between levels (see :class:`~textrestore.layers.CrossLayerAttention`).
        fusion_temperature: initial temperature of the cross-layer affinity.
        default_prompt: the prompt used when ``text`` is None.
        channels_last: run the body in channels_last memory format (faster convs on CPU).
        text_encoder: name of the text encoder the preset was designed for (metadata,
            used by tools that attach an encoder; see :func:`textrestore.text.create_text_encoder`).

    Shape:
        - image: (B, in_chans, H, W) float, nominally in [0, 1]
        - text: None, a str, a list of B (or 1) str, a (B, L, D) / (L, D) / (D,) tensor or a
          TextEmbedding
        - output: (B, in_chans, H, W) (not clipped; clip for display)

    Example:
        >>> import torch
        >>> model = NaLSuper(dim=16, depth=2, num_heads=2, text_dim=8)
        >>> model(torch.rand(1, 3, 13, 17), torch.randn(4, 8)).shape
        torch.Size([1, 3, 13, 17])
    """

    def __init__(
        self,
        in_chans: int = 3,
        *,
        dim: int = 64,
        depth: int = 15,
        num_heads: int = 4,
        text_dim: int = 512,
        reduction: int = 8,
        act_layer: type[nn.Module] = nn.ReLU,
        init_values: float | None = 0.1,
        use_tcm: bool = True,
        use_ifa: bool = True,
        use_fusion: bool = True,
        layer_attention: bool = True,
        fusion_temperature: float = 10.0,
        default_prompt: str = "normal light image",
        channels_last: bool = True,
        text_encoder: str | None = None,
    ) -> None:
        super().__init__()
        for key, value in (("in_chans", in_chans), ("dim", dim), ("depth", depth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"NaLSuper: {key} must be a positive int, got {value!r}")
        self.in_chans, self.dim, self.depth, self.text_dim = in_chans, dim, depth, text_dim
        self.use_tcm, self.channels_last = use_tcm, channels_last
        self.text_encoder_name = text_encoder
        self.config: dict[str, Any] = {
            "in_chans": in_chans, "dim": dim, "depth": depth, "num_heads": num_heads,
            "text_dim": text_dim, "reduction": reduction, "init_values": init_values,
            "use_tcm": use_tcm, "use_ifa": use_ifa, "use_fusion": use_fusion,
            "layer_attention": layer_attention, "fusion_temperature": fusion_temperature,
            "default_prompt": default_prompt, "channels_last": channels_last,
            "text_encoder": text_encoder,
        }  # fmt: skip
        self.stem = nn.Conv2d(in_chans, dim, 3, padding=1)
        self.blocks = nn.ModuleList(
            RTFB(
                dim, text_dim, num_heads=num_heads, reduction=reduction, act_layer=act_layer,
                init_values=init_values, use_tcm=use_tcm, use_ifa=use_ifa,
                num_levels=depth if use_fusion and i == depth - 1 else None,
                fusion_temperature=fusion_temperature, layer_attention=layer_attention,
            )
            for i in range(depth)
        )  # fmt: skip
        self.tail = nn.Conv2d(dim, in_chans, 3, padding=1)
        self.prompt_bank = PromptBank(text_dim, default_prompt=default_prompt)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        move_fusion_keys(state_dict, prefix, f"blocks.{self.depth - 1}.")
        super()._load_from_state_dict(state_dict, prefix, *args)

    @property
    def fusion(self) -> CrossLayerAttention | None:
        """The cross-layer attention that fuses the block outputs (the last IFA's), or None."""
        ifa = getattr(self.blocks[-1], "ifa", None)
        return getattr(ifa, "fusion", None)

    # -- forward ------------------------------------------------------------------------
    def _prepare(
        self, image: Tensor, text: TextInput
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Checked input in the body's memory format, and the (B, L, D) tokens and mask."""
        check_image_batch(image, "NaLSuper input image", self.in_chans)
        emb = self.embed_text(text, image.shape[0]) if self.use_tcm else None
        tokens = emb.tokens.to(device=image.device, dtype=image.dtype) if emb is not None else None
        mask = emb.mask.to(image.device) if emb is not None else None
        x = image.contiguous(memory_format=torch.channels_last) if self.channels_last else image
        return x, tokens, mask

    def forward_features(self, image: Tensor, text: TextInput = None) -> list[Tensor]:
        """The output of every RTFB, a list of ``depth`` tensors (B, C, H, W)."""
        x, tokens, mask = self._prepare(image, text)
        return self._run_blocks(self.stem(x), tokens, mask)

    def _run_blocks(self, x: Tensor, tokens: Tensor | None, mask: Tensor | None) -> list[Tensor]:
        levels = []
        for block in self.blocks:
            x = block(x, tokens, mask)
            levels.append(x)
        return levels

    def _run_body(self, x: Tensor, tokens: Tensor | None, mask: Tensor | None) -> Tensor:
        """The blocks; the last one fuses every block's output when it was built to."""
        fuses = self.fusion is not None
        earlier: list[Tensor] = []
        for block in self.blocks[:-1]:
            x = block(x, tokens, mask)
            if fuses:  # without a fusion no earlier output is kept
                earlier.append(x)
        return self.blocks[-1](x, tokens, mask, levels=earlier if fuses else None)

    def _level_buffer_ok(self, x: Tensor) -> bool:
        """Eligibility of the level-buffer branch of :meth:`forward` (see ``inference_fast_path``).

        Besides the shared predicate: the blocks, the last block's IFA and its fusion are
        this library's own classes (a user's replacement runs through its own ``forward``
        on the plain branch),
        every TCM uses fused attention (``fused_attn=False`` asks for the reference
        formulation, e.g. for FLOP counting), and there are at least two levels to fuse.
        """
        return (
            self.depth > 1
            and all(type(b) is RTFB for b in self.blocks)
            and type(self.blocks[-1].ifa) is IFA
            and type(self.fusion) is CrossLayerAttention
            and all(b.tcm is None or b.tcm.fused_attn for b in self.blocks)  # type: ignore[union-attr]
            and inference_fast_path(self, x)
        )

    def forward(self, image: Tensor, text: TextInput = None) -> Tensor:
        """Enhance ``image`` guided by ``text`` (see the class docstring for both).

        One code path; when :meth:`_level_buffer_ok` holds (inference), the block outputs
        are written straight into one preallocated level buffer and the last IFA's fusion
        takes the levels' cosine similarity (float32 Gram over the buffer) and folds
        ``I + scale·A`` into its 1×1 projection
        (:meth:`~textrestore.layers.CrossLayerAttention.fold_projection`), so neither the
        (B, N, C·H·W) stack nor ``A F`` is allocated. Same result up to reassociation.
        """
        x, tokens, mask = self._prepare(image, text)
        x = self.stem(x)
        if not self._level_buffer_ok(x):
            return (image + self.tail(self._run_body(x, tokens, mask))).contiguous()
        fusion = cast(CrossLayerAttention, self.fusion)  # checked by _level_buffer_ok
        b, c, h, w = x.shape
        n, k = self.depth, c * h * w
        cl = x.is_contiguous(memory_format=torch.channels_last)
        # Levels 0..n-2, each contiguous in x's layout: (H, W, C) for channels_last.
        shape = (n - 1, b, h, w, c) if cl else (n - 1, b, c, h, w)
        buf = x.new_empty(shape)
        slots = [s.permute(0, 3, 1, 2) if cl else s for s in buf.unbind(0)]
        for i, block in enumerate(self.blocks):
            x = block(x, tokens, mask, out=slots[i] if i < n - 1 else None)
        last = (x.permute(0, 2, 3, 1) if cl else x).reshape(b, k)
        cosine = (
            _level_cosine(buf, last, n, b, k)
            if fusion.layer_attention and fixed_statistic(fusion) is None
            else x.new_zeros(b, n, n, dtype=torch.float32)
        )
        weights = fusion.fold_projection(cosine).to(x.dtype)  # (B, C_out, N, C)
        proj_bias = fusion.proj.bias
        bias = x.new_zeros(c) if proj_bias is None else proj_bias.to(x.dtype)
        if cl:
            fused = x.new_empty(b, h, w, c)
            for j in range(b):
                acc = fused[j].view(h * w, c)
                torch.addmm(bias, last[j].view(h * w, c), weights[j, :, n - 1].T, out=acc)
                for m in range(n - 1):
                    acc.addmm_(buf[m, j].view(h * w, c), weights[j, :, m].T)
            fused_img = fused.permute(0, 3, 1, 2)
        else:
            fused_img = x.new_empty(b, c, h, w)
            for j in range(b):
                acc = fused_img[j].view(c, h * w)
                torch.addmm(bias[:, None], weights[j, :, n - 1], last[j].view(c, h * w), out=acc)
                for m in range(n - 1):
                    acc.addmm_(weights[j, :, m], buf[m, j].view(c, h * w))
        del buf, slots, x
        return (image + self.tail(fused_img)).contiguous()


def move_fusion_keys(state_dict: dict[str, Any], prefix: str, last_block: str) -> None:
    """Checkpoints from before the fusion moved into the last block's IFA: rename its keys.

    ``<prefix>fusion.*`` becomes ``<prefix><last_block>ifa.fusion.*`` (same values, same
    function).
    """
    old = prefix + "fusion."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + last_block + "ifa.fusion." + key[len(old) :]] = state_dict.pop(key)


def _level_cosine(buf: Tensor, last: Tensor, n: int, b: int, k: int) -> Tensor:
    """Cosine similarity (B, N, N) of the N levels: ``n - 1`` in ``buf`` and ``last`` (B, K).

    The Gram matrix is accumulated in float32 over column chunks (a float16 feature map's
    sum of squares overflows float16), then divided by the levels' norms.
    """
    gram = torch.zeros(b, n, n, dtype=torch.float32, device=last.device)
    chunk = k if last.dtype == torch.float32 else 1 << 18
    with torch.autocast(last.device.type, enabled=False):
        for j in range(b):
            stored = buf[:, j].reshape(n - 1, k)  # a view: rows strided by b·k
            for start in range(0, k, chunk):
                # fp32: views, no copy; other dtypes: one float32 chunk at a time.
                s_c = stored[:, start : start + chunk].float()
                l_c = last[j, start : start + chunk].float()
                gram[j, : n - 1, : n - 1].addmm_(s_c, s_c.T)
                cross = s_c @ l_c
                gram[j, : n - 1, n - 1] += cross
                gram[j, n - 1, : n - 1] += cross
                gram[j, n - 1, n - 1] += l_c @ l_c
    norms = gram.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt()
    unit = gram / (norms[:, :, None] * norms[:, None, :]).clamp_min(1e-12)
    return cosine_from_gram(unit, norms)


def _build(
    preset: dict[str, Any],
    pretrained: bool,
    name: str,
    overrides: dict[str, Any],
    cls: type[nn.Module] | None = None,
) -> Any:
    model = (cls or NaLSuper)(**{**preset, **overrides})
    if pretrained:
        from .pretrained import load_pretrained

        load_pretrained(model, name)
    return model


@register_model
def nalsuper(pretrained: bool = False, **overrides: Any) -> NaLSuper:
    """The paper's configuration: C=64, 15 RTFBs, 4 heads, CLIP ViT-B/32 text (D=512)."""
    preset = {"dim": 64, "depth": 15, "num_heads": 4, "text_dim": 512,
              "text_encoder": "openclip:ViT-B-32"}  # fmt: skip
    return _build(preset, pretrained, "nalsuper", overrides)


@register_model
def nalsuper_s(pretrained: bool = False, **overrides: Any) -> NaLSuper:
    """Small CPU preset: C=32, 8 RTFBs, 4 heads, MiniLM text (D=384)."""
    preset = {"dim": 32, "depth": 8, "num_heads": 4, "text_dim": 384, "text_encoder": "minilm"}
    return _build(preset, pretrained, "nalsuper_s", overrides)


@register_model
def nalsuper_t(pretrained: bool = False, **overrides: Any) -> NaLSuper:
    """Tiny preset for tests and demos: C=16, 3 RTFBs, 2 heads, MiniLM text (D=384)."""
    preset = {"dim": 16, "depth": 3, "num_heads": 2, "text_dim": 384, "text_encoder": "minilm"}
    return _build(preset, pretrained, "nalsuper_t", overrides)
