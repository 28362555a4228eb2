"""Export a model with its prompt embedding baked in: ONNX, TorchScript, ExportedProgram.

The exported graph takes one input, ``image`` (B, 3, H, W) float32 with dynamic batch B,
height H and width W, and returns the enhanced image of the same shape (not clipped). The
prompt's token embeddings are constants of the graph, so no text encoder is needed at run
time. Multi-scale models (``model.multiple > 1``) export for H, W > ``multiple`` (the
coarsest scale must be at least 2 pixels); single-scale ones for any H, W >= 1.

Formats:

- ``torchscript`` (``.pt``): ``torch.jit.trace``; load with ``torch.jit.load``.
- ``exported-program`` (``.pt2``): ``torch.export`` with dynamic B/H/W; load with
  ``torch.export.load(path).module()``.
- ``onnx`` (``.onnx``): the ``torch.export``-based ONNX exporter (needs the ``export``
  extra: ``onnx``, ``onnxscript``; ``onnxruntime`` to run it).

Example:
    >>> import torch, tempfile, os
    >>> from textrestore import create_model
    >>> m = create_model("nalsuper_t", text_dim=8)
    >>> emb = torch.randn(3, 8)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = export_model(m, os.path.join(d, "m.pt"), "torchscript", text=emb)
    ...     ts = torch.jit.load(str(path))
    ...     x = torch.rand(1, 3, 37, 53)
    ...     bool((ts(x) - BakedPromptModel(m, text=emb)(x)).abs().max() < 1e-4)
    True
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._atomic import atomic_path

__all__ = ["BakedPromptModel", "export_model", "load_exported", "FORMATS", "DEFAULT_SUFFIX"]

FORMATS = ("onnx", "torchscript", "exported-program")
DEFAULT_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}


class BakedPromptModel(nn.Module):
    """``image -> model(image, prompt)`` with the prompt's embedding stored as buffers.

    The prompt is passed to the model as a batch-1 :class:`~textrestore.text.TextEmbedding`
    that the model broadcasts, so the batch stays symbolic under ``torch.export``. For a
    model that pads its input to a ``multiple`` (the multi-scale presets), the padding and
    the crop are done here while exporting, with index gathers (the same replicate padding)
    so that no branch depends on whether the size is already a multiple.

    Args:
        model: a NaLSuper-like module with ``embed_text`` (or any ``model(image, text)``).
        prompt: the prompt to bake (default: the model's default prompt); looked up in
            the model's prompt bank.
        text: an embedding tensor (L, D) / (1, L, D) to bake instead of a prompt.

    Shape:
        - image: (B, 3, H, W); output: (B, 3, H, W)
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor

    def __init__(
        self, model: nn.Module, prompt: str | None = None, text: Tensor | None = None
    ) -> None:
        super().__init__()
        self.model: nn.Module = model
        if text is None:
            if not hasattr(model, "embed_text"):
                raise TypeError(
                    "BakedPromptModel: the model has no embed_text(); pass the embedding as text="
                )
            emb = model.embed_text(prompt, 1)  # type: ignore[operator]
            tokens, mask = emb.tokens, emb.mask
            keep = mask[0]
            tokens = tokens[:, keep]  # one prompt: only its real tokens, no padding
        else:
            if not isinstance(text, Tensor) or text.ndim not in (1, 2, 3):
                raise ValueError(
                    "BakedPromptModel: text must be a (D,), (L, D) or (1, L, D) tensor, got "
                    f"{type(text).__name__} {getattr(text, 'shape', '')}"
                )
            tokens = text.reshape(1, -1, text.shape[-1])
        tokens = tokens.detach().clone().float()
        self.register_buffer("tokens", tokens)
        self.register_buffer("mask", torch.ones(tokens.shape[:2], dtype=torch.bool))
        self.register_buffer("pooled", tokens.mean(1))

    def forward(self, image: Tensor) -> Tensor:
        from .text import TextEmbedding

        text = TextEmbedding(self.tokens, self.mask, self.pooled)  # batch 1, broadcast
        m = int(getattr(self.model, "multiple", 1))
        if m == 1 or not getattr(torch.compiler, "is_exporting", lambda: False)():
            out: Tensor = self.model(image, text)
            return out
        h, w = image.shape[-2:]
        rows = torch.arange((h + m - 1) // m * m, device=image.device).clamp(max=h - 1)
        cols = torch.arange((w + m - 1) // m * m, device=image.device).clamp(max=w - 1)
        padded = image.index_select(2, rows).index_select(3, cols)  # replicate, bottom/right
        out = self.model(padded, text)
        return out.index_select(2, rows[:h]).index_select(3, cols[:w])


def _dynamic_shapes(model: nn.Module) -> dict[str, dict[int, Any]]:
    from torch.export import Dim

    m = int(getattr(model, "multiple", 1))
    low = 1 if m == 1 else m + 1  # multi-scale: the coarsest scale holds >= 2 pixels
    return {
        "image": {
            0: Dim("batch", min=1, max=4096),
            2: Dim("height", min=low, max=16384),
            3: Dim("width", min=low, max=16384),
        }
    }


def _export_program(baked: nn.Module, example: Tensor) -> Any:
    """``torch.export`` with dynamic batch, height and width.

    Guards that the symbolic-shape solver cannot prove for every size (the padding
    arithmetic of multi-scale models) become runtime assertions of the graph instead of
    specialising the shapes (``prefer_deferred_runtime_asserts_over_guards``).
    """
    inner = getattr(baked, "model", baked)
    with torch.no_grad():
        return torch.export.export(
            baked,
            (example,),
            dynamic_shapes=_dynamic_shapes(inner),
            prefer_deferred_runtime_asserts_over_guards=True,
        )


def export_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    format: str = "onnx",
    prompt: str | None = None,
    text: Tensor | None = None,
    example_size: tuple[int, int] = (64, 96),
    opset: int = 18,
) -> Path:
    """Export ``model`` with a baked prompt to ``path`` (written atomically).

    Args:
        model: the model; a float32 CPU copy in eval mode is exported, ``model`` itself is
            left as it was (mode, dtype, device).
        path: output file.
        format: one of ``"onnx"``, ``"torchscript"``, ``"exported-program"``.
        prompt: prompt to bake (default: the model's default prompt).
        text: an embedding tensor to bake instead of ``prompt``.
        example_size: (H, W) of the example input used to trace.
        opset: ONNX opset.

    Returns:
        The written path.
    """
    if format not in FORMATS:
        raise ValueError(f"export_model: format must be one of {FORMATS}, got {format!r}")
    out = Path(path)
    if out.parent and not out.parent.exists():
        raise FileNotFoundError(f"export_model: folder {out.parent} does not exist")
    # a float32 CPU copy in eval mode: the caller's model keeps its mode, dtype and device
    model = copy.deepcopy(model).eval().float().cpu()
    baked = BakedPromptModel(model, prompt=prompt, text=text).eval()
    if format == "onnx":  # the plain softmax path exports to every opset
        for m in baked.modules():
            if hasattr(m, "fused_attn"):
                setattr(m, "fused_attn", False)  # noqa: B010
    h, w = example_size
    # batch 2: an example of batch 1 would specialise the batch dimension to 1
    example = torch.rand(1 if format == "torchscript" else 2, 3, h, w)
    with atomic_path(out) as tmp:
        if format == "torchscript":
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated"
                traced = torch.jit.trace(baked, example, check_trace=False)
                traced.save(str(tmp))
        elif format == "exported-program":
            torch.export.save(_export_program(baked, example), str(tmp))
        else:
            _export_onnx(baked, example, tmp, opset)
    return out


def _export_onnx(baked: nn.Module, example: Tensor, tmp: Path, opset: int) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "ONNX export needs the 'export' extra: pip install 'textrestore[export]' "
            "(onnx, onnxscript, onnxruntime)"
        ) from err
    exported = _export_program(baked, example)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            exported,
            (example,),
            dynamo=True,
            input_names=["image"],
            output_names=["enhanced"],
            opset_version=opset,
            external_data=False,
        )
    if program is None:  # pragma: no cover - the dynamo exporter always returns one
        raise RuntimeError("torch.onnx.export returned no ONNXProgram")
    program.save(str(tmp))


def load_exported(path: str | os.PathLike[str]) -> Any:
    """Load an exported file as a callable ``f(image) -> image`` (float32 tensors).

    ``.onnx`` runs with onnxruntime on CPU; ``.pt2`` is an ExportedProgram; anything
    else is loaded with ``torch.jit.load``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"load_exported: no such file: {p}")
    if p.suffix == ".onnx":
        import numpy as np
        import onnxruntime as ort

        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name

        def run(image: Tensor) -> Tensor:
            arr = image.detach().cpu().numpy().astype(np.float32)
            return torch.from_numpy(sess.run(None, {name: arr})[0])

        return run
    if p.suffix == ".pt2":
        return torch.export.load(str(p)).module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated"
        return torch.jit.load(str(p), map_location="cpu")
