"""Image file I/O: read PNG/JPEG/TIFF/BMP (8/16-bit, grey/RGB/RGBA) and write PNG/JPEG/TIFF.

Reading returns ``(H, W, 3)`` arrays (``uint8`` or ``uint16``) or ``(3, H, W)`` float
tensors in [0, 1]: grey is replicated to three channels, alpha is dropped, the EXIF
orientation tag is applied. 16-bit PNGs (grey and RGB/RGBA) are decoded exactly by a
small built-in PNG reader, because Pillow reduces 16-bit colour PNGs to 8 bits; 16-bit
TIFFs go through ``tifffile`` when it is installed. Unreadable or truncated files raise
``ValueError`` naming the file.

This module is the library's one image conversion: :func:`to_float` (integers to floats
in [0, 1]) and :func:`quantize` (floats in [0, 1] to integers, rounding half up) are used
by the datasets, :func:`textrestore.enhance` and the ``textrestore enhance`` command alike,
so the API and the command give identical pixels for the same file.

Example:
    >>> import tempfile, os, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> img = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 7000).astype(np.uint16)
    >>> p = write_image(os.path.join(d, "a.png"), img, bit_depth=16)
    >>> bool((read_image_array(p) == img).all())
    True
    >>> read_image(p).shape, read_image(p).dtype
    (torch.Size([3, 2, 3]), torch.float32)
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from .._atomic import atomic_path

__all__ = [
    "IMAGE_EXTENSIONS",
    "read_image",
    "read_image_array",
    "write_image",
    "to_tensor",
    "to_array",
    "to_float",
    "quantize",
    "is_image_file",
    "ImageMetadata",
    "read_image_metadata",
]

#: File extensions the datasets treat as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

PathLike = str | os.PathLike

_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def is_image_file(path: PathLike) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and is not
    hidden: names starting with ``.`` (macOS ``._photo.jpg`` resource forks, the temporary
    files of an interrupted atomic write) are not images to read."""
    p = Path(path)
    return not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS


# -- 16-bit PNG ------------------------------------------------------------------------
def _png_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of a PNG, or None if not a PNG."""
    if len(data) < 33 or not data.startswith(_PNG_SIG) or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return w, h, depth, ctype, interlace


def _unfilter(raw: np.ndarray, h: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the PNG scanline filters (spec section 9) of a non-interlaced image."""
    rows = raw.reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(h):
        ftype, line = int(rows[y, 0]), rows[y, 1:]
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:  # Sub: cumulative sum per byte position modulo 256
            cur = np.cumsum(line.reshape(-1, bpp).astype(np.int64), axis=0) % 256
            cur = cur.astype(np.uint8).reshape(-1)
        elif ftype == 2:  # Up
            cur = (line.astype(np.uint16) + prev).astype(np.uint8)
        elif ftype in (3, 4):  # Average, Paeth: sequential along the row
            cur = np.zeros(stride, dtype=np.uint8)
            li, pi = line.astype(np.int64), prev.astype(np.int64)
            ci = np.zeros(stride, dtype=np.int64)
            for x in range(0, stride, bpp):
                b = pi[x : x + bpp]
                a = ci[x - bpp : x] if x >= bpp else np.zeros(bpp, dtype=np.int64)
                if ftype == 3:
                    pred = (a + b) // 2
                else:
                    c = pi[x - bpp : x] if x >= bpp else np.zeros(bpp, dtype=np.int64)
                    p = a + b - c
                    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                ci[x : x + bpp] = (li[x : x + bpp] + pred) % 256
            cur = ci.astype(np.uint8)
        else:
            raise ValueError(f"unknown PNG filter type {ftype} in row {y}")
        out[y] = cur
        prev = cur
    return out


def _read_png16(data: bytes, header: tuple[int, int, int, int, int]) -> np.ndarray:
    """Decode a 16-bit, non-interlaced PNG to (H, W, C) uint16 (C = 1, 2, 3 or 4)."""
    w, h, _, ctype, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if channels is None or interlace != 0:
        raise ValueError(f"unsupported 16-bit PNG (colour type {ctype}, interlace {interlace})")
    pos, idat = 8, []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if len(chunk) != length:
            raise ValueError("truncated PNG chunk")
        if kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    else:
        raise ValueError("truncated PNG (no IEND chunk)")
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    except zlib.error as err:
        raise ValueError(f"corrupt PNG image data ({err})") from err
    bpp = 2 * channels
    stride = w * bpp
    if raw.size != h * (stride + 1):
        raise ValueError(f"truncated PNG image data: {raw.size} of {h * (stride + 1)} bytes")
    pixels = _unfilter(raw, h, stride, bpp)
    return pixels.view(">u2").astype(np.uint16).reshape(h, w, channels)


def _write_png16(path: Path, arr: np.ndarray, metadata: ImageMetadata | None = None) -> None:
    """Write (H, W), (H, W, 3) or (H, W, 4) uint16 as a 16-bit PNG (filter 0, zlib level 6),
    with ``metadata``'s ICC profile (iCCP) and EXIF (eXIf) chunks when given."""
    a = arr if arr.ndim == 3 else arr[..., None]
    h, w, c = a.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = a.astype(">u2").reshape(h, w * c).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)
    extra = b""
    if metadata is not None and metadata.icc_profile:
        extra += chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(metadata.icc_profile))
    if metadata is not None and metadata.exif:
        extra += chunk(b"eXIf", metadata.exif.removeprefix(b"Exif\x00\x00"))
    path.write_bytes(
        _PNG_SIG
        + chunk(b"IHDR", ihdr)
        + extra
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class ImageMetadata:
    """What :func:`write_image` can carry over from a source file: its EXIF block (with the
    orientation reset to 1, since :func:`read_image_array` already applied it) and its ICC
    colour profile; either may be None."""

    exif: bytes | None = None
    icc_profile: bytes | None = None


def read_image_metadata(path: PathLike) -> ImageMetadata:
    """The EXIF (orientation reset to 1) and ICC profile of an image file (None if absent).

    Never raises for an unreadable file: it has no metadata to keep.

    Example:
        >>> read_image_metadata("no-such-file.png")
        ImageMetadata(exif=None, icc_profile=None)
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            icc = im.info.get("icc_profile") or None
            exif = im.getexif()
            if 0x0112 in exif:
                exif[0x0112] = 1
            exif_bytes = exif.tobytes() if len(exif) else None
    except Exception:
        return ImageMetadata()
    return ImageMetadata(exif=exif_bytes, icc_profile=icc)


def _exif_orientation(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, ...) array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1],  # transverse
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op is not None else arr


def _to_rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W) / (H, W, 1|2|3|4) -> (H, W, 3): grey replicated, alpha dropped."""
    if arr.ndim == 2:
        arr = arr[..., None]
    c = arr.shape[2]
    if c in (1, 2):
        arr = np.repeat(arr[..., :1], 3, axis=2)
    elif c >= 3:
        arr = arr[..., :3]
    return np.ascontiguousarray(arr)


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.load()
        im: Image.Image = ImageOps.exif_transpose(opened)
        mode = im.mode
        if mode == "F":  # floats in [0, 1]: kept at 16 bits
            return cast(np.ndarray, quantize(pil_to_array(im).copy(), np.uint16))
        if mode.startswith("I"):  # 16-bit grey (mode I on some Pillow versions)
            return pil_to_array(im)
        if mode in ("RGBA", "LA", "P", "PA", "1", "CMYK", "YCbCr", "HSV", "LAB", "RGBX"):
            im = im.convert("RGB") if mode not in ("LA",) else im.convert("L")
        elif mode not in ("RGB", "L"):
            im = im.convert("RGB")
        return np.asarray(im).copy()


def read_image_array(path: PathLike) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` ``uint8`` or ``uint16`` array.

    Args:
        path: a PNG, JPEG, TIFF or BMP file (8- or 16-bit; grey, RGB or RGBA).

    Returns:
        ``(H, W, 3)`` array: ``uint16`` for 16-bit files, ``uint8`` otherwise. Grey is
        replicated, alpha dropped, EXIF orientation applied.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable image (the message names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"read_image: no such file: {p}")
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
        header = _png_header(head)
        if header is not None and header[2] == 16:
            arr = _orient(_read_png16(p.read_bytes(), header), _exif_orientation(p))
        elif p.suffix.lower() in (".tif", ".tiff") and _tiff_is_16bit(p):
            arr = _read_tiff16(p)
        else:
            arr = _read_pil(p)
        if arr.size == 0:
            raise ValueError("empty image")
    except FileNotFoundError:
        raise
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
        raise ValueError(
            f"read_image: cannot read {p}: not a valid or complete image file ({err})"
        ) from err
    return _to_rgb(arr)


def _tiff_is_16bit(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    except Exception:
        return False
    if bits is None:
        return False
    first = bits[0] if isinstance(bits, tuple) else bits
    return int(first) == 16


def _read_tiff16(path: Path) -> np.ndarray:
    try:
        import tifffile
    except ImportError:
        arr = _read_pil(path)  # Pillow handles 16-bit grey TIFF; colour may be reduced
    else:
        arr = np.asarray(tifffile.imread(str(path)))
        if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4):
            arr = np.moveaxis(arr, 0, -1)
        arr = arr.astype(np.uint16)
    return _orient(arr, _exif_orientation(path))


_PEAK = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def to_float(arr: np.ndarray) -> np.ndarray:
    """A uint8 / uint16 / float array as float32 in [0, 1] (integers divided by their peak).

    Floats are returned as float32 without clipping (callers check their range).

    Example:
        >>> to_float(np.array([0, 128, 255], np.uint8)).tolist()
        [0.0, 0.501960813999176, 1.0]
    """
    peak = _PEAK.get(arr.dtype)
    if peak is not None:
        out = arr.astype(np.float32)
        out /= peak
        return out
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"expected a uint8, uint16 or float image array, got dtype {arr.dtype}")


def quantize(image: np.ndarray | Tensor, dtype: type | np.dtype) -> np.ndarray | Tensor:
    """Floats in [0, 1] to ``uint8`` or ``uint16`` (NumPy) / ``uint8`` (torch).

    ``floor(clip(x, 0, 1) · peak + 0.5)``: values are clipped, halves round up. A float32
    NumPy array is converted in place (no second image-sized buffer); pass a copy to keep it.

    Example:
        >>> quantize(np.array([0.0, 0.5, 1.2], np.float32), np.uint8).tolist()
        [0, 128, 255]
    """
    dt = np.dtype(dtype)
    if dt not in _PEAK:
        raise ValueError(f"quantize: dtype must be uint8 or uint16, got {dt}")
    peak = _PEAK[dt]
    if isinstance(image, Tensor):
        if dt != np.uint8:
            raise ValueError("quantize: torch has no uint16 image type; use a NumPy array")
        return (image.clamp(0.0, 1.0) * peak + 0.5).floor_().to(torch.uint8)
    x = image if image.dtype == np.float32 else image.astype(np.float32)
    np.clip(x, 0.0, 1.0, out=x)
    x *= peak
    x += 0.5
    return x.astype(dt)


def to_tensor(arr: np.ndarray) -> Tensor:
    """``(H, W[, 3])`` uint8/uint16/float array -> ``(3, H, W)`` float32 tensor in [0, 1].

    Floats are clipped to [0, 1]; grey (H, W) is replicated to three channels.

    Example:
        >>> to_tensor(np.full((1, 2, 3), 255, np.uint8)).flatten().tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    try:
        x = to_float(arr)
    except TypeError as err:
        raise TypeError(f"to_tensor: {err}") from None
    if np.issubdtype(arr.dtype, np.floating):
        x = np.clip(x, 0.0, 1.0)
    if x.ndim == 2:
        x = x[..., None].repeat(3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).contiguous()


def to_array(image: Tensor | np.ndarray, bits: int = 8) -> np.ndarray:
    """``(3, H, W)`` / ``(H, W, 3)`` float in [0, 1] -> ``(H, W, 3)`` uint8 or uint16.

    Integer arrays are converted between depths exactly (uint8 to 16 bits ×257; uint16 to
    8 bits rounded like :func:`quantize`); floats go through :func:`quantize`.
    """
    if bits not in (8, 16):
        raise ValueError(f"to_array: bits must be 8 or 16, got {bits}")
    if isinstance(image, Tensor):
        t = image.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ValueError(
                f"to_array: expected a (3, H, W) or (1, H, W) tensor, got {tuple(t.shape)}"
            )
        arr = t.float().permute(1, 2, 0).numpy()
        if arr.shape[2] == 1:
            arr = arr[..., 0]
    else:
        arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.uint16) * 257 if bits == 16 else arr
    if arr.dtype == np.uint16:  # round(v · 255 / 65535), exactly, in integers
        return arr if bits == 16 else ((arr.astype(np.uint32) * 510 + 65535) // 131070).astype(
            np.uint8
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"to_array: expected a float, uint8 or uint16 image, got {arr.dtype}")
    return cast(np.ndarray, quantize(np.array(arr, dtype=np.float32), np.uint8 if bits == 8 else np.uint16))


def pil_to_array(im: Any) -> np.ndarray:
    """The pixels of a PIL image in its own kind: 16/32-bit integer modes as uint16
    (clipped to [0, 65535]), F as float32, the rest as Pillow gives them."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return np.clip(np.asarray(im).astype(np.int64), 0, 65535).astype(np.uint16)
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)
    return np.asarray(im)


def read_image(path: PathLike) -> Tensor:
    """Read an image file as a ``(3, H, W)`` float32 tensor in [0, 1].

    Args:
        path: PNG, JPEG, TIFF or BMP (8- or 16-bit; grey, RGB or RGBA).

    Returns:
        ``(3, H, W)`` float32 tensor; 16-bit files keep their full precision (/65535).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or truncated file (the message names it).
    """
    return to_tensor(read_image_array(path))


def write_image(
    path: PathLike,
    image: Tensor | np.ndarray,
    bit_depth: int | None = 8,
    metadata: ImageMetadata | None = None,
) -> Path:
    """Write an image as PNG, JPEG (quality 95), TIFF, BMP or WebP, chosen by the suffix.

    The file is written to a temporary name in the same folder and renamed over ``path``,
    so a reader never sees half of it.

    Args:
        path: destination; its suffix (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``,
            ``.bmp``, ``.webp``) picks the format.
        image: ``(3, H, W)`` float tensor in [0, 1] (a leading batch of 1 is dropped), or an
            ``(H, W[, 3|4])`` uint8 / uint16 / float array.
        bit_depth: 8 or 16 (16: PNG written exactly by a built-in encoder, TIFF through
            ``tifffile``); None keeps the depth of an integer array (16 for uint16) and
            writes floats as 8-bit. JPEG, BMP and WebP are always 8-bit.
        metadata: EXIF and ICC profile to write (:func:`read_image_metadata` of the
            source): kept by PNG (8 and 16 bit), JPEG, WebP and TIFF (8 bit); BMP and
            16-bit TIFF hold neither.

    Returns:
        The path written.

    Raises:
        ValueError: unknown suffix, bad ``bit_depth``, or 16 bits asked of JPEG/BMP.
        TypeError: ``image`` is neither a tensor nor an array of a supported dtype.

    Example:
        >>> import tempfile, os, torch
        >>> p = write_image(os.path.join(tempfile.mkdtemp(), "x.png"), torch.ones(3, 2, 2), 16)
        >>> read_image_array(p).dtype.name, read_image(p).min().item()
        ('uint16', 1.0)
    """
    from PIL import Image

    p = Path(path)
    suffix = p.suffix.lower()
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP", ".webp": "WEBP"}.get(suffix)  # fmt: skip
    if fmt is None:
        raise ValueError(
            f"write_image: unsupported extension {p.suffix!r} for {p}; expected one of "
            f"{', '.join(IMAGE_EXTENSIONS)}"
        )
    if not isinstance(image, (Tensor, np.ndarray)):
        raise TypeError(
            f"write_image: expected a torch.Tensor or numpy array, got {type(image).__name__}"
        )
    if bit_depth is None:
        is16 = isinstance(image, np.ndarray) and image.dtype == np.uint16
        bit_depth = 16 if is16 and fmt in ("PNG", "TIFF") else 8
    if bit_depth not in (8, 16):
        raise ValueError(f"write_image: bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and fmt in ("JPEG", "BMP", "WEBP"):
        raise ValueError(f"write_image: {fmt} cannot hold 16-bit images; use .png or .tif")
    arr = to_array(image, bit_depth)
    with atomic_path(p) as tmp:
        if bit_depth == 16 and fmt == "PNG":
            _write_png16(tmp, arr, metadata)
        elif bit_depth == 16:
            try:
                import tifffile
            except ImportError as err:
                raise ValueError(
                    "write_image: 16-bit TIFF needs the tifffile package (pip install tifffile)"
                ) from err
            tifffile.imwrite(str(tmp), arr)
        else:
            kwargs: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {}
            if metadata is not None and fmt != "BMP":
                if metadata.exif:
                    kwargs["exif"] = metadata.exif
                if metadata.icc_profile:
                    kwargs["icc_profile"] = metadata.icc_profile
            Image.fromarray(arr).save(tmp, format=fmt, **kwargs)
    return p
