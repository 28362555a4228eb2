"""``textrestore app``: a local web app (Gradio) to try a model in the browser.

Upload one or several photos, type a prompt or click one of the model's known prompts,
compare before | after with a slider, download the results. It serves on 127.0.0.1 only,
runs on the CPU by default, tiles large photos (:func:`textrestore.enhance` picks whole
image or tiles from the memory budget), and makes no network calls: Gradio's analytics
are off, no share link, system fonts only. Needs the ``app`` extra (``pip install
"textrestore[app]"``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._args import add_device_argument, add_model_arguments, load_model_option

__all__ = ["build_app", "register"]

DESCRIPTION = __doc__


def _load(weights: str | None, preset: str | None) -> Any:
    """A folder written by ``save_pretrained`` or anything ``inference.load_model`` takes."""
    return load_model_option(weights, preset)


def _attach_encoder(model: Any) -> str | None:
    """Attach the model's own text encoder if installed (typed prompts); None if not."""
    name = getattr(model, "text_encoder_name", None)
    bank = getattr(model, "prompt_bank", None)
    if not name or bank is None or bank.text_encoder is not None:
        return None
    try:
        from ..text import create_text_encoder

        model.set_text_encoder(create_text_encoder(name))
    except Exception as err:  # optional: known prompts still work
        return f"text encoder {name!r} unavailable ({type(err).__name__}); known prompts only"
    return None


def build_app(model: Any, device: str = "cpu", out_dir: str | os.PathLike[str] | None = None) -> Any:
    """The Gradio ``Blocks`` of the app for ``model`` (not launched).

    Args:
        model: a text-guided model (``forward(image, text)``) with a prompt bank.
        device: where to run the model.
        out_dir: folder of the result files offered for download (default: a temp folder).

    Returns:
        A ``gradio.Blocks``; ``.launch(server_name="127.0.0.1")`` serves it.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    import numpy as np

    from ..data import read_image_array, write_image
    from ..inference import enhance

    note = _attach_encoder(model)
    bank = model.prompt_bank
    known = list(bank.prompts) or [bank.default_prompt]
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="textrestore-app-"))
    out.mkdir(parents=True, exist_ok=True)
    runs = {"n": 0}

    def run(files: list[Any] | None, prompt: str) -> tuple[Any, Any, Any, str]:
        if not files:
            raise gr.Error("Upload at least one photo.")
        prompt = (prompt or "").strip() or bank.default_prompt
        runs["n"] += 1
        pairs, written = [], []
        for i, f in enumerate(files):
            path = Path(getattr(f, "name", f))
            low = read_image_array(path)  # uint8 or uint16 (H, W, 3)
            low_f = low.astype(np.float32) / float(np.iinfo(low.dtype).max)
            try:
                result = enhance(low_f, model, prompt=prompt, device=device)
            except (KeyError, ValueError) as err:
                raise gr.Error(str(err)) from None
            result = np.clip(np.asarray(result, dtype=np.float32), 0.0, 1.0)
            target = out / f"run{runs['n']:03d}_{i:02d}_{path.stem}_enhanced.png"
            write_image(target, result)
            pairs.append((low_f, result))
            written.append(str(target))
        mean = float(np.mean([p[1].mean() for p in pairs]))
        status = f"{len(files)} photo(s) with prompt {prompt!r}; mean output brightness {mean:.4f}"
        gallery = [(w, Path(w).name) for w in written]
        return pairs[0], gallery, written, status

    theme = gr.themes.Default(font=["sans-serif"], font_mono=["monospace"])  # no web fonts
    with gr.Blocks(title="textrestore", theme=theme, analytics_enabled=False) as app:
        gr.Markdown(
            "# textrestore\nText-guided low-light enhancement. Upload photos, type a prompt "
            "or click a known one, then **Enhance**."
            + (f"\n\n*{note}*" if note else "")
        )
        with gr.Row():
            with gr.Column():
                files = gr.File(
                    label="Photos", file_count="multiple", file_types=["image"],
                    elem_id="photos",
                )  # fmt: skip
                usable = bank.default_prompt in known or bank.text_encoder is not None
                first = bank.default_prompt if usable else known[0]
                prompt = gr.Textbox(label="Prompt", value=first, elem_id="prompt")
                with gr.Row():
                    for i, p in enumerate(known[:24]):
                        gr.Button(p, size="sm", elem_id=f"known-{i}").click(
                            lambda p=p: p, None, prompt
                        )
                go = gr.Button("Enhance", variant="primary", elem_id="enhance")
                status = gr.Markdown(elem_id="status")
            with gr.Column():
                slider = gr.ImageSlider(label="Before | after", type="numpy", elem_id="slider")
                gallery = gr.Gallery(label="Results", elem_id="results")
                downloads = gr.File(label="Download", file_count="multiple", elem_id="downloads")
        go.click(run, [files, prompt], [slider, gallery, downloads, status])
    return app


def run_app(args: argparse.Namespace) -> int:
    """Run ``textrestore app``; returns the exit code."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio  # noqa: F401
    except ImportError:
        print(
            "textrestore app: needs Gradio: pip install 'textrestore[app]'", file=sys.stderr
        )
        return 2
    model = _load(args.weights, args.model)
    device = "cpu" if args.device == "auto" else args.device
    app = build_app(model, device=device)
    app.queue().launch(
        server_name="127.0.0.1", server_port=args.port, share=False, inbrowser=False,
        show_error=True, allowed_paths=[],
    )  # fmt: skip
    return 0


def register(subparsers: Any) -> None:
    """Add the ``app`` subcommand."""
    p = subparsers.add_parser(
        "app",
        help="a local web app (Gradio) to try the model in the browser",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p)
    p.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1 (default: 7860)")
    add_device_argument(p)
    p.set_defaults(func=run_app)
