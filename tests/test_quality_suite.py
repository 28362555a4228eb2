"""The quality suite: baselines, metrics, controls and the text ablation on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from textrestore.cli import main
from textrestore.data.controls import CONTROLS, EXPOSURE_LEVELS
from textrestore.metrics.suite import colour_angle_error, lime_retinex, run_quality_suite
from textrestore.text import create_text_encoder


class _ExposureByPrompt(torch.nn.Module):
    """A stand-in model whose output exposure is set by the prompt (known answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = create_text_encoder("learned:1", dim=4)
        self.prompt_bank = None

    def forward(self, low: torch.Tensor, prompt: object = None) -> torch.Tensor:
        name = "normal" if prompt is None else _control_name(prompt)
        ev = CONTROLS[name].ev if name in CONTROLS else 0.0
        return (low * 4.0 * 2.0 ** (ev / 2.2)).clamp(0, 1)


def _control_name(prompt: object) -> str:
    for name, c in CONTROLS.items():
        if prompt in c.prompts or prompt in c.held_out:
            return name
    return "normal"


def test_suite_reports_every_family_and_recovers_known_exposure_gaps(tmp_path) -> None:
    photos = {"a": torch.rand(3, 48, 64) * 0.6 + 0.2, "b": torch.rand(3, 40, 40) * 0.5 + 0.3}
    result = run_quality_suite(
        _ExposureByPrompt(), photos, seeds=(0,), families=["training", "well_exposed"],
        sheet_dir=tmp_path,
    )  # fmt: skip
    assert set(result["families"]) == {"training", "well_exposed"}
    fam = result["families"]["training"]
    assert set(fam["mean"]) == {"input", "gamma_0.4", "clahe", "lime", "model"}
    assert 0.0 <= fam["wins"]["input"]["psnr"] <= 1.0
    controls = result["controls"]
    # ev/2.2 in sRGB-gamma units: the measured EV gaps follow the prompt's level order.
    evs = [controls["exposure_ev_mean"][lv] for lv in EXPOSURE_LEVELS]
    assert evs == sorted(evs) and controls["monotonic_fraction"] > 0.5
    assert controls["exposure_ev_mean"]["normal"] == pytest.approx(0.0, abs=1e-9)
    assert result["text_ablation"] == {"skipped": "the model has no prompt bank"}
    assert any(p.endswith("controls.jpg") for p in result["contact_sheets"])


def test_lime_and_colour_angle_against_plain_formulas() -> None:
    colour = torch.tensor([0.2, 0.1, 0.05]).view(1, 3, 1, 1)
    x = colour.expand(1, 3, 9, 9)  # uniform: the blurred max-RGB map is 0.2 everywhere
    assert torch.allclose(lime_retinex(x), (x / 0.2**0.8).clamp(0, 1), atol=1e-5)
    a = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    b = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1)
    assert float(colour_angle_error(a, b)[0]) == pytest.approx(45.0, abs=1e-4)


def test_benchmark_quality_command_writes_json_and_markdown(tmp_path) -> None:
    from textrestore.data import write_image

    photos = tmp_path / "photos"
    write_image(photos / "p.png", torch.rand(3, 40, 48))
    weights = tmp_path / "m.safetensors"
    from safetensors.torch import save_model

    from textrestore.models import create_model

    model = create_model("nalsuper_t")
    model.set_text_encoder(create_text_encoder("minilm"))
    model.prompt_bank([c.prompts[0] for c in CONTROLS.values()])
    save_model(model, str(weights), metadata={"preset": "nalsuper_t"})
    out = tmp_path / "q"
    code = main([
        "benchmark-quality", "--weights", str(weights), "--photos", str(photos),
        "--size", "32", "--seeds", "1", "--families", "training", "colour_cast", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    data = json.loads((out / "quality.json").read_text())
    assert set(data["families"]) == {"training", "colour_cast"}
    assert "text_ablation" in data and "| training | model |" in (out / "quality.md").read_text()
