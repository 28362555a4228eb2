"""enhance(): input kinds, odd sizes, padding, tiling with blending, tile='auto'."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from textrestore import create_model
from textrestore.data import read_image_array, write_image
from textrestore.inference import (
    auto_tile_size,
    enhance,
    load_model,
    plan_tiles,
    tile_window,
)
from textrestore.metrics import psnr
from textrestore.text import TextEmbedding


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    model = create_model("nalsuper_t", text_dim=8).eval()
    gen = torch.Generator().manual_seed(0)
    emb = TextEmbedding(
        torch.randn(1, 3, 8, generator=gen), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 8)
    )
    model.prompt_bank.add("normal light image", emb)
    return model


SIZES = [(1, 1), (37, 53), (600, 400)]


def _float_reference(model: torch.nn.Module, rgb01: np.ndarray) -> np.ndarray:
    """The model's output for (H, W, 3) floats in [0, 1], as a float64 array (whole image)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb01, dtype=np.float32)).permute(2, 0, 1)
    out = enhance(x, model=model, tile="whole", device="cpu")
    return out.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_numpy_kinds(tiny, size, dtype):
    """Each dtype is scaled by its own peak on the way in and out (checked against the
    float output and a plain rounding formula): a uint16 read as 8-bit would fail."""
    h, w = size
    rng = np.random.default_rng(0)
    if dtype == np.uint8:
        arr = rng.integers(0, 256, (h, w, 3)).astype(dtype)
        peak = 255.0
    elif dtype == np.uint16:
        arr = rng.integers(0, 65536, (h, w, 3)).astype(dtype)
        peak = 65535.0
    else:
        arr = rng.random((h, w, 3)).astype(dtype)
        peak = 1.0
    out = enhance(arr, model=tiny, tile="whole", device="cpu")
    assert isinstance(out, np.ndarray)
    assert out.shape == arr.shape and out.dtype == arr.dtype
    ref = _float_reference(tiny, arr.astype(np.float64) / peak)
    if peak == 1.0:
        np.testing.assert_allclose(out, ref, atol=1e-6)
    else:
        expected = np.floor(np.clip(ref, 0, 1) * peak + 0.5)
        assert np.abs(out.astype(np.float64) - expected).max() <= 1  # float32 vs 64 rounding


@pytest.mark.parametrize("size", SIZES)
def test_tensor_and_pil(tiny, size):
    h, w = size
    t = torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))
    out = enhance(t, model=tiny, device="cpu")
    assert out.shape == t.shape and out.dtype == t.dtype and out.device == t.device
    ref = _float_reference(tiny, t.permute(1, 2, 0).numpy())
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), ref, atol=1e-6)
    tb = torch.stack([t, t.flip(-1)]).double()
    outb = enhance(tb, model=tiny, device="cpu")
    assert outb.shape == tb.shape and outb.dtype == torch.float64
    torch.testing.assert_close(outb[0].float(), out, atol=1e-6, rtol=0)
    t8 = (t * 255).to(torch.uint8)
    out8 = enhance(t8, model=tiny, device="cpu")
    assert out8.dtype == torch.uint8
    ref8 = _float_reference(tiny, t8.permute(1, 2, 0).numpy() / 255.0)
    expected8 = np.floor(np.clip(ref8, 0, 1) * 255 + 0.5)
    assert np.abs(out8.permute(1, 2, 0).numpy().astype(np.float64) - expected8).max() <= 1
    rgb = np.random.default_rng(1).integers(0, 256, (h, w, 3)).astype(np.uint8)
    for mode in ("RGB", "L", "RGBA"):
        im = Image.fromarray(rgb).convert(mode)
        res = enhance(im, model=tiny, device="cpu")
        assert isinstance(res, Image.Image) and res.size == im.size and res.mode == mode
        # the PIL route gives the pixels of the array route
        expected = enhance(np.asarray(im), model=tiny, device="cpu")
        assert np.array_equal(np.asarray(res), expected)


def test_enhance_leaves_the_callers_model_as_it_was():
    """A module you pass keeps its mode, device, dtype and parameter objects."""
    model = create_model("nalsuper_t", text_dim=8).train()
    model.prompt_bank.add(
        "normal light image",
        TextEmbedding(torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 8)),
    )
    params = {name: (p, p.detach().clone()) for name, p in model.named_parameters()}
    enhance(torch.rand(3, 20, 24), model=model)  # device="auto": the module's own device
    enhance(torch.rand(3, 20, 24), model=model, device="cpu", tile=16, overlap=4)
    assert all(m.training for m in model.modules())
    for name, p in model.named_parameters():
        assert p is params[name][0] and p.device.type == "cpu" and torch.equal(p, params[name][1])


def test_path_input(tiny, tmp_path):
    arr = np.random.default_rng(1).integers(0, 80, (37, 53, 3)).astype(np.uint8)
    path = write_image(tmp_path / "x.png", arr)
    assert np.array_equal(read_image_array(path), arr)
    out = enhance(str(path), model=tiny, device="cpu")
    assert isinstance(out, Image.Image) and out.size == (53, 37)
    assert np.array_equal(np.asarray(out), enhance(arr, model=tiny, device="cpu"))
    with pytest.raises(FileNotFoundError):
        enhance(tmp_path / "missing.png", model=tiny, device="cpu")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a valid or complete image"):
        read_image_array(bad)
    with pytest.raises(ValueError, match="bad.png"):
        enhance(bad, model=tiny, device="cpu")


def test_bad_inputs(tiny):
    with pytest.raises(TypeError, match="expected a path"):
        enhance([1, 2, 3], model=tiny, device="cpu")
    with pytest.raises(ValueError, match="shape"):
        enhance(np.zeros((4, 4, 2), np.uint8), model=tiny, device="cpu")
    with pytest.raises(TypeError, match="dtype"):
        enhance(np.zeros((4, 4, 3), np.int32), model=tiny, device="cpu")
    with pytest.raises(ValueError, match="tensor of shape"):
        enhance(torch.rand(4, 5, 5), model=tiny, device="cpu")
    with pytest.raises(ValueError, match="overlap"):
        enhance(torch.rand(3, 5, 5), model=tiny, tile=16, overlap=16, device="cpu")
    with pytest.raises(TypeError, match="tile"):
        enhance(torch.rand(3, 5, 5), model=tiny, tile="big", device="cpu")
    with pytest.raises(ValueError, match="neither"):
        load_model("no-such-model")
    with pytest.raises(FileNotFoundError):
        load_model("missing.safetensors")


def test_plan_and_window():
    for length, tile, ov in [(100, 40, 10), (512, 128, 32), (37, 16, 4), (16, 16, 4)]:
        starts = plan_tiles(length, tile, ov)
        assert starts[0] == 0 and starts[-1] + min(tile, length) == length
        gaps = np.diff(starts)
        assert all(tile - g >= ov for g in gaps)
    w = tile_window(64, 16)
    assert bool((w > 0).all()) and torch.allclose(w, w.flip(0)) and float(w[20]) == 1.0
    # complementary ramps: overlapping raised cosines sum to one
    ramp = w[:16]
    assert torch.allclose(ramp + ramp.flip(0), torch.ones(16), atol=1e-6)


def test_tiled_matches_whole_for_local_model():
    """A purely local model (convs only): tiles with enough overlap reproduce the whole image."""

    class Local(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x, text=None):
            return x + 0.1 * self.conv(x)

    m = Local()
    x = torch.rand(1, 3, 70, 90)
    whole = enhance(x, model=m, device="cpu")
    tiled = enhance(x, model=m, tile=32, overlap=12, tile_batch=3, device="cpu")
    assert float(psnr(tiled, whole)) > 60


def test_padding_hook():
    """A model that declares ``pad_multiple`` gets reflect-padded input and a cropped output."""

    class Needs8(torch.nn.Module):
        pad_multiple = 8

        def forward(self, x, text=None):
            if x.shape[-1] % 8 or x.shape[-2] % 8:
                raise AssertionError(f"unpadded input {tuple(x.shape)}")
            return x

    x = torch.rand(1, 3, 37, 53)
    assert torch.equal(enhance(x, model=Needs8(), device="cpu"), x)
    assert enhance(torch.rand(3, 1, 1), model=Needs8(), device="cpu").shape == (3, 1, 1)


def test_auto_tile(tiny):
    budget = 16 << 20  # 16 MiB
    tile = auto_tile_size(tiny, 600, 400, budget, batch=2, overlap=16, min_tile=16)
    assert tile is not None and tile < 400
    from textrestore.inference import IO_BYTES_PER_PIXEL, MIN_AUTO_TILE, bytes_per_pixel

    per_pixel = bytes_per_pixel(tiny) + IO_BYTES_PER_PIXEL  # the model and the copies around it
    assert 2 * tile * tile * per_pixel <= budget < 2 * (tile + 8) ** 2 * per_pixel
    assert auto_tile_size(tiny, 64, 64, budget) is None
    # the automatic tile never collapses: a tiny budget still gets >= 256-px tiles
    assert auto_tile_size(tiny, 6000, 8000, 1 << 20, batch=4) == MIN_AUTO_TILE
    assert auto_tile_size(tiny, 6000, 8000, 1 << 20, overlap=96) == 384
    x = torch.rand(1, 3, 600, 400)
    out = enhance(x, model=tiny, tile="auto", memory_budget=budget, overlap=16, device="cpu")
    assert out.shape == x.shape


def test_reduced_precision_runs_a_bf16_copy_and_leaves_the_model(tiny, monkeypatch):
    """amp=True: the forward sees bfloat16 (the fast path applies); the caller's model stays."""
    import textrestore.inference as inference

    seen: list[torch.dtype] = []
    handle = tiny.stem.register_forward_hook(lambda m, args, out: seen.append(args[0].dtype))
    x = torch.rand(1, 3, 40, 48) * 0.3
    try:
        full = enhance(x, model=tiny, device="cpu", amp=False)
        half = enhance(x, model=tiny, device="cpu", amp=True)
    finally:
        handle.remove()
    assert seen == [torch.float32, torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in tiny.parameters())
    assert half.dtype == torch.float32 and psnr(half, full) > 40.0
    # the default on CPU: bfloat16 exactly when the CPU computes it natively
    for native in (False, True):
        monkeypatch.setattr(inference, "native_bf16_cpu", lambda n=native: n)
        seen.clear()
        handle = tiny.stem.register_forward_hook(lambda m, a, o: seen.append(a[0].dtype))
        try:
            enhance(x, model=tiny, device="cpu")
        finally:
            handle.remove()
        assert seen == [torch.bfloat16 if native else torch.float32]


def test_prompt_and_training_mode_restored(tiny):
    tiny.train()
    enhance(torch.rand(3, 8, 8), model=tiny, prompt="normal light image", device="cpu")
    assert tiny.training
    tiny.eval()


def _photo_512x768() -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    from textrestore.data.degradation import DegradationConfig, degrade

    ref = torch.from_numpy(data.coffee()).permute(2, 0, 1).float()[None] / 255
    ref = torch.nn.functional.interpolate(ref, size=(512, 768), mode="bilinear", antialias=True)
    return degrade(ref.clamp(0, 1), [7], DegradationConfig(well_exposed=0.0))[0]


def test_tiled_vs_whole_shipped_model():
    """docs/guides/tiled_inference.md: the shipped default, 512×768, 256-px tiles, 32-px
    overlap: 46.5 dB with 4 tiles per batch, 40.9 dB with 1 (a coarser context pass), and
    25.5 dB without the context pass. Asserted with a margin of 2.4 dB or more."""
    model = load_model()  # the shipped default preset
    low = _photo_512x768()
    whole = enhance(low, model=model, tile="whole", device="cpu")
    tiled = enhance(low, model=model, tile=256, overlap=32, device="cpu")
    assert float(psnr(tiled, whole)) >= 44.0
    tiled1 = enhance(low, model=model, tile=256, overlap=32, tile_batch=1, device="cpu")
    assert float(psnr(tiled1, whole)) >= 38.5
    no_context = enhance(low, model=model, tile=256, overlap=32, context=False, device="cpu")
    assert float(psnr(no_context, whole)) <= 29.0
    # nothing about the tiles is left on the modules: a whole-image call is unchanged
    torch.testing.assert_close(enhance(low, model=model, tile="whole", device="cpu"), whole)


def test_tiled_calls_in_two_threads_get_their_sequential_results(tiny):
    """Tiling statistics are per call (a context variable), not stored on the shared model."""
    import threading

    model = tiny
    images = [torch.rand(3, 96, 128) * 0.3, torch.rand(3, 96, 128) * 0.3 + 0.6]
    kwargs = {"model": model, "tile": 48, "overlap": 8, "device": "cpu"}
    sequential = [enhance(img, **kwargs) for img in images]
    results: dict[int, list[torch.Tensor]] = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(3):
            results[i].append(enhance(images[i], **kwargs))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        for out in results[i]:
            torch.testing.assert_close(out, sequential[i], atol=0, rtol=0)


class _WithText(torch.nn.Module):
    """A model whose text is fixed: ``enhance`` calls it with the image only."""

    def __init__(self, net: torch.nn.Module, text: torch.Tensor) -> None:
        super().__init__()
        self.net, self.text = net, text

    def forward(self, image, prompt=None):
        return self.net(image, self.text)


def test_context_makes_tiles_agree():
    """Global statistics from the context pass: tiles of a global-attention model agree."""
    from textrestore.layers import CrossLayerAttention

    model = create_model("nalsuper_t", text_dim=8).eval()
    with torch.no_grad():
        for p in model.parameters():  # strong global terms (the scales start at 0)
            p.add_(0.3 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, CrossLayerAttention):
                m.scale.fill_(1.0)
    x = torch.rand(1, 3, 96, 120) * torch.linspace(0.05, 1, 120)  # a brightness ramp
    text = torch.randn(3, 8)

    wrapped = _WithText(model, text)
    whole = enhance(x, model=wrapped, device="cpu")
    with_ctx = enhance(x, model=wrapped, tile=64, overlap=32, tile_batch=8, device="cpu")
    without = enhance(x, model=wrapped, tile=64, overlap=32, device="cpu", context=False)
    good, bad = float(psnr(with_ctx, whole)), float(psnr(without, whole))
    assert good > bad + 10 and good > 30, (good, bad)


def test_tiled_context_and_tiles_stay_on_the_fast_path(monkeypatch):
    """The context pass and the tiles run NaLSuper's memory-lean inference path."""
    from textrestore.models.nalsuper import NaLSuper

    model = create_model("nalsuper_t", text_dim=8).eval()
    text = torch.randn(3, 8)
    seen: list[bool] = []
    eligible = NaLSuper._level_buffer_ok

    def record(self, x):
        seen.append(eligible(self, x))
        return seen[-1]

    monkeypatch.setattr(NaLSuper, "_level_buffer_ok", record)

    wrapped = _WithText(model, text)
    enhance(torch.rand(1, 3, 70, 90), model=wrapped, tile=32, overlap=8, tile_batch=4, device="cpu")
    assert len(seen) >= 2 and all(seen), seen


def test_cpu_plan_caps_the_pixels_per_forward():
    """On CPU one tiled forward holds at most FORWARD_BYTES of activations, but never fewer
    than FORWARD_PIXELS pixels; without the cap (CUDA) the budget alone decides."""
    from textrestore.inference import (
        FORWARD_BYTES,
        FORWARD_PIXELS,
        _auto_plan,
        _forward_pixels,
        bytes_per_pixel,
    )  # fmt: skip

    lean, wide = create_model("nalsuper_ms"), create_model("nalsuper_s")
    for model, dtype in [(lean, torch.bfloat16), (lean, torch.float32), (wide, torch.bfloat16)]:
        cap = _forward_pixels(model, dtype)
        assert cap == max(FORWARD_PIXELS, FORWARD_BYTES // bytes_per_pixel(model, dtype))
    assert _forward_pixels(lean, torch.bfloat16) > FORWARD_PIXELS  # 303 B/px: about 2^20
    assert _forward_pixels(wide, torch.bfloat16) == FORWARD_PIXELS  # 704 B/px: the floor
    budget = 1 << 30
    cap = _forward_pixels(lean, torch.bfloat16)
    for h, w in [(2124, 2832), (3000, 4000), (4240, 5656)]:
        tile, batch = _auto_plan(lean, h, w, budget, 4, 32, torch.bfloat16, cap)
        assert tile is not None and tile * tile * batch <= cap
        free_tile, free_batch = _auto_plan(lean, h, w, budget, 4, 32, torch.bfloat16)
        assert free_tile * free_tile * free_batch > cap


class _LocalModel(torch.nn.Module):
    """Convs only: every output pixel depends on a small neighbourhood of the input."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(0.2 * torch.randn(self.conv.weight.shape, generator=gen))

    def forward(self, x, text=None):
        return x * 0.8 + 0.1 + 0.1 * self.conv(x)


def _plain_blend(model, img: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Slow reference: every tile through the model, raised-cosine weights, one division."""
    h, w, _ = img.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = plan_tiles(h, th, overlap), plan_tiles(w, tw, overlap)
    wy = tile_window(th, overlap if len(ys) > 1 else 0).double().numpy()
    wx = tile_window(tw, overlap if len(xs) > 1 else 0).double().numpy()
    win = wy[:, None] * wx[None, :]
    acc, norm = np.zeros((h, w, 3)), np.zeros((h, w, 1))
    for y in ys:
        for x in xs:
            crop = torch.from_numpy(img[y : y + th, x : x + tw].astype(np.float32) / 255)
            with torch.no_grad():
                out = model(crop.permute(2, 0, 1)[None])[0].permute(1, 2, 0).double().numpy()
            acc[y : y + th, x : x + tw] += out * win[..., None]
            norm[y : y + th, x : x + tw] += win[..., None]
    return np.clip(acc / norm, 0, 1)


@pytest.mark.parametrize("size", [(150, 200), (97, 301), (70, 500)])
def test_streamed_tiles_equal_a_plain_blend_and_never_hold_the_whole_image(size, monkeypatch):
    """Tiles are read from the 8-bit buffer and finished rows written as they complete: the
    result equals a plain whole-image blend, while no read and no band of float sums ever
    spans the whole image (batches of 3 tiles straddle tile rows)."""
    import textrestore.inference as inference

    h, w = size
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    model = _LocalModel()
    reads: list[int] = []
    band_rows: list[int] = []
    real_read, real_add = inference._ArrayPixels.read, inference._RowBand.add

    def read(self, b, y0, y1, x0, x1):
        reads.append((y1 - y0) * (x1 - x0))
        return real_read(self, b, y0, y1, x0, x1)

    def add(self, y, x, result, weight):
        real_add(self, y, x, result, weight)
        band_rows.append(self.acc.shape[1])

    monkeypatch.setattr(inference._ArrayPixels, "read", read)
    monkeypatch.setattr(inference._RowBand, "add", add)
    out = enhance(img, model=model, tile=32, overlap=8, tile_batch=3, device="cpu", amp=False)
    ref = _plain_blend(model, img, 32, 8)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.abs(out.astype(np.float64) - np.floor(ref * 255 + 0.5)).max() <= 1
    assert max(reads) <= 32 * 32 and max(band_rows) <= 2 * 32 < h


def test_tensor_batches_stream_per_image():
    """A (B, 3, H, W) batch: every image blended on its own, same as one at a time."""
    model = _LocalModel()
    x = torch.rand(3, 3, 70, 90)
    both = enhance(x, model=model, tile=32, overlap=8, tile_batch=4, device="cpu", amp=False)
    for i in range(3):
        one = enhance(x[i], model=model, tile=32, overlap=8, tile_batch=4, device="cpu", amp=False)
        torch.testing.assert_close(both[i], one, atol=1e-6, rtol=0)
    u8 = (x * 255).round().to(torch.uint8)
    out8 = enhance(u8, model=model, tile=32, overlap=8, device="cpu", amp=False)
    assert out8.dtype == torch.uint8 and out8.shape == u8.shape
    # whole images: tile_batch images per forward, each the same as alone
    whole = enhance(x, model=model, tile="whole", tile_batch=2, device="cpu", amp=False)
    for i in range(3):
        one = enhance(x[i], model=model, tile="whole", device="cpu", amp=False)
        torch.testing.assert_close(whole[i], one, atol=1e-6, rtol=0)


def test_context_image_is_read_in_strips_and_matches_a_direct_resize():
    """The context pass downsizes strip by strip (box filter, then antialiased bilinear):
    close to one antialiased resize of the whole float image, never reading it at once."""
    import torch.nn.functional as F

    from textrestore.inference import _context_image, _TensorPixels

    gen = torch.Generator().manual_seed(0)
    smooth = F.interpolate(
        torch.rand(1, 3, 24, 32, generator=gen), size=(960, 1280), mode="bicubic"
    )
    x = (smooth + 0.02 * torch.randn(1, 3, 960, 1280, generator=gen)).clamp(0, 1)
    pix = _TensorPixels(x, torch.device("cpu"))
    reads: list[int] = []
    real = pix.read
    pix.read = lambda b, y0, y1, x0, x1: (reads.append(y1 - y0), real(b, y0, y1, x0, x1))[1]  # type: ignore[method-assign]
    small = _context_image(pix, 0, 120 * 160)
    direct = F.interpolate(x, size=(120, 160), mode="bilinear", antialias=True)
    assert small.shape == direct.shape == (1, 3, 120, 160)
    assert float(psnr(small, direct)) > 35 and max(reads) < 960


def test_the_loaded_models_reduced_precision_copy_is_reused_until_it_changes() -> None:
    """A model load_model() loaded: one bf16 copy across calls, renewed after an in-place
    edit, a new prompt or a changed flag; a caller's own module gets a fresh copy each call."""
    from textrestore.inference import _half_copy, load_model

    model = load_model()  # the shipped model, cached by the library
    first = _half_copy(model, torch.bfloat16)
    assert _half_copy(model, torch.bfloat16) is first
    assert all(p.dtype == torch.bfloat16 for p in first.parameters())
    x = torch.rand(3, 24, 32) * 0.3
    before = enhance(x, model=None, device="cpu", amp=True)
    with torch.no_grad():
        tail = model.tail
        saved = [t.clone() for t in (tail.weight, tail.bias)]
        for t in (tail.weight, tail.bias):
            t.mul_(0.0)  # in place: the tail adds nothing, the output is the input
        try:
            second = _half_copy(model, torch.bfloat16)
            assert second is not first and float(second.tail.weight.abs().max()) == 0.0
            edited = enhance(x, model=None, device="cpu", amp=True)
        finally:
            for t, v in zip((tail.weight, tail.bias), saved):
                t.copy_(v)
    assert float((edited - x).abs().max()) < 0.01 < float((before - x).abs().max())
    third = _half_copy(model, torch.bfloat16)
    assert third is not second
    model.channels_last = not model.channels_last  # a plain attribute is part of the state
    try:
        assert _half_copy(model, torch.bfloat16) is not third
    finally:
        model.channels_last = not model.channels_last
    mine = create_model("nalsuper_t", text_dim=8)
    assert _half_copy(mine, torch.bfloat16) is not _half_copy(mine, torch.bfloat16)
