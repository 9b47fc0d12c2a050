"""cxrmask.imageio: every container the real sources use reads as 8-bit grey or a boolean mask."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrmask.errors import InputError
from cxrmask.imageio import read_grey, read_mask, write_png


@pytest.fixture
def grey() -> np.ndarray:
    """A 40 x 48 uint8 image using the whole 0..255 range (non-square, to catch transposes)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(40, 48), dtype=np.uint8)
    image[0, 0], image[-1, -1] = 0, 255
    return image


def _save(array: np.ndarray, path: Path, mode: str | None = None) -> Path:
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)
    return path


def _square_mask(values: tuple[int, int], dtype: type = np.uint8) -> np.ndarray:
    mask = np.full((32, 32), values[0], dtype=dtype)
    mask[8:20, 10:26] = values[1]
    return mask


EXPECTED_SQUARE = _square_mask((0, 1)).astype(bool)


# ---- grey images -----------------------------------------------------------------------------------


def test_8bit_png_reads_unchanged(tmp_path: Path, grey: np.ndarray) -> None:
    out = read_grey(_save(grey, tmp_path / "a.png"))
    assert out.dtype == np.uint8
    assert np.array_equal(out, grey)


def test_result_is_a_writable_array(tmp_path: Path, grey: np.ndarray) -> None:
    # Downstream code hands it to torch.from_numpy, which warns on (and cannot guard) read-only memory.
    out = read_grey(_save(grey, tmp_path / "a.png"))
    assert out.flags.writeable
    out[0, 0] = 7
    assert read_mask(_save(grey, tmp_path / "b.png")).flags.writeable


def test_rgba_png_becomes_luminance_and_ignores_alpha(tmp_path: Path, grey: np.ndarray) -> None:
    alpha = np.random.default_rng(1).integers(0, 256, size=grey.shape, dtype=np.uint8)
    rgba = np.stack([grey, grey, grey, alpha], axis=-1)
    path = _save(rgba, tmp_path / "nih_rgba.png")
    assert Image.open(path).mode == "RGBA"
    out = read_grey(path)
    assert out.shape == grey.shape and out.dtype == np.uint8
    assert np.array_equal(out, grey)


def test_rgb_png_becomes_itu_luma(tmp_path: Path) -> None:
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:8, :, 0] = 255  # red
    rgb[8:, :, 1] = 255  # green
    out = read_grey(_save(rgb, tmp_path / "rgb.png"))
    # ITU-R 601-2 luma, as PIL's "L" conversion: L = 0.299 R + 0.587 G + 0.114 B.
    assert out.shape == (16, 16)
    assert set(np.unique(out[:8])) == {76}
    assert set(np.unique(out[8:])) == {150}


def test_palette_png_reads_as_its_palettes_grey_not_its_indices(tmp_path: Path) -> None:
    """A mode P PNG stores palette indices; the image is what the palette maps them to."""
    indices = np.zeros((16, 24), dtype=np.uint8)
    indices[:, 12:] = 1
    indices[8:, :6] = 2
    palette = Image.fromarray(indices)  # an "L" image given a palette becomes mode "P"
    palette.putpalette([200, 200, 200, 10, 10, 10, 0, 0, 255])  # light grey, near black, blue
    path = tmp_path / "palette.png"
    palette.save(path)
    assert Image.open(path).mode == "P"
    expected = np.choose(indices, [200, 10, 29]).astype(np.uint8)  # blue's luma: 0.114 * 255
    assert np.array_equal(read_grey(path), expected)


def test_16bit_png_with_12bit_range_spans_0_to_255(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(100, 4095, 64).round().astype(np.uint16), (16, 1))
    path = _save(ramp, tmp_path / "dicom_export.png")
    assert Image.open(path).mode == "I;16"
    out = read_grey(path)
    assert out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255
    # Rescaled by the image's own range: monotonic, and the middle of the range is mid-grey.
    assert np.all(np.diff(out[0].astype(int)) >= 0)
    assert abs(int(out[0, 32]) - round((ramp[0, 32] - 100) / (4095 - 100) * 255)) <= 1


def test_constant_16bit_image_is_black_not_an_error(tmp_path: Path) -> None:
    out = read_grey(_save(np.full((16, 16), 1000, dtype=np.uint16), tmp_path / "flat.png"))
    assert out.dtype == np.uint8 and not out.any()


def test_bmp_reads_unchanged(tmp_path: Path, grey: np.ndarray) -> None:
    assert np.array_equal(read_grey(_save(grey, tmp_path / "airlangga.bmp")), grey)


def test_npy_uint8_reads_unchanged(tmp_path: Path, grey: np.ndarray) -> None:
    np.save(tmp_path / "a.npy", grey)
    assert np.array_equal(read_grey(tmp_path / "a.npy"), grey)


def test_npy_float_is_rescaled_by_its_range(tmp_path: Path) -> None:
    values = np.tile(np.linspace(-1.0, 1.0, 51), (12, 1))
    np.save(tmp_path / "f.npy", values)
    out = read_grey(tmp_path / "f.npy")
    assert out.dtype == np.uint8
    assert out[0, 0] == 0 and out[0, -1] == 255 and out[0, 25] == 128


def test_npy_bool_is_0_or_255(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", EXPECTED_SQUARE)
    out = read_grey(tmp_path / "b.npy")
    assert set(np.unique(out)) == {0, 255}
    assert np.array_equal(out == 255, EXPECTED_SQUARE)


def test_npy_with_leading_channel_axis_is_squeezed(tmp_path: Path, grey: np.ndarray) -> None:
    np.save(tmp_path / "c.npy", grey[None])
    assert np.array_equal(read_grey(tmp_path / "c.npy"), grey)


def test_npy_with_nan_is_an_error_not_a_black_image(tmp_path: Path) -> None:
    values = np.ones((16, 16))
    values[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", values)
    with pytest.raises(InputError, match=r"nan\.npy.*NaN or infinite"):
        read_grey(tmp_path / "nan.npy")
    with pytest.raises(InputError, match="NaN or infinite"):
        read_mask(tmp_path / "nan.npy")


@pytest.mark.parametrize("shape", [(64,), (4, 64), (16, 16, 16, 2)])
def test_npy_that_is_not_an_image_is_an_error(tmp_path: Path, shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "odd.npy", np.zeros(shape, dtype=np.uint8))
    with pytest.raises(InputError, match=r"odd\.npy.*2-D"):
        read_grey(tmp_path / "odd.npy")


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 64, dtype=object).reshape(8, 8), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy: cannot decode"):
        read_grey(tmp_path / "obj.npy")


# ---- broken files ----------------------------------------------------------------------------------


def test_truncated_png_names_the_file_and_the_fix(tmp_path: Path, grey: np.ndarray) -> None:
    whole = _save(grey, tmp_path / "whole.png").read_bytes()
    cut = tmp_path / "00000001_000.png"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError) as info:
        read_grey(cut)
    message = str(info.value)
    assert str(cut) in message
    assert "truncated" in message and "download it again" in message


def test_random_bytes_name_the_file_and_the_fix(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as info:
        read_mask(junk)
    assert str(junk) in str(info.value)
    assert "download it again" in str(info.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "x.png"
    with pytest.raises(InputError, match="file not found") as info:
        read_grey(missing)
    assert str(missing) in str(info.value)


def test_a_directory_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    with pytest.raises(InputError, match="not found"):
        read_grey(tmp_path / "d.png")


# ---- masks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "suffix"), [((0, 1), ".png"), ((0, 255), ".png"), ((0, 255), ".bmp")])
def test_binary_masks_mean_the_same(tmp_path: Path, values: tuple[int, int], suffix: str) -> None:
    out = read_mask(_save(_square_mask(values), tmp_path / f"m{suffix}"))
    assert out.dtype == bool
    assert np.array_equal(out, EXPECTED_SQUARE)


def test_one_bit_bmp_mask(tmp_path: Path) -> None:
    path = _save(_square_mask((0, 255)), tmp_path / "m1.bmp", mode="1")
    assert Image.open(path).mode == "1"
    assert np.array_equal(read_mask(path), EXPECTED_SQUARE)


def test_16bit_mask(tmp_path: Path) -> None:
    path = _save(_square_mask((0, 65535), np.uint16), tmp_path / "m16.png")
    assert np.array_equal(read_mask(path), EXPECTED_SQUARE)


def test_npy_masks(tmp_path: Path) -> None:
    np.save(tmp_path / "bool.npy", EXPECTED_SQUARE)
    np.save(tmp_path / "float.npy", EXPECTED_SQUARE.astype(np.float32))
    assert np.array_equal(read_mask(tmp_path / "bool.npy"), EXPECTED_SQUARE)
    assert np.array_equal(read_mask(tmp_path / "float.npy"), EXPECTED_SQUARE)


def test_antialiased_mask_is_binarised_at_half_the_maximum(tmp_path: Path) -> None:
    mask = _square_mask((0, 200))
    mask[7, 10:26] = 101  # just above half of 200: inside
    mask[20, 10:26] = 100  # exactly half: outside
    mask[8:20, 9] = 30  # faint edge: outside
    out = read_mask(_save(mask, tmp_path / "aa.png"))
    expected = EXPECTED_SQUARE.copy()
    expected[7, 10:26] = True
    assert np.array_equal(out, expected)


def test_all_zero_mask_is_empty_not_an_error(tmp_path: Path) -> None:
    out = read_mask(_save(np.zeros((32, 32), dtype=np.uint8), tmp_path / "empty.png"))
    assert out.dtype == bool and out.shape == (32, 32) and not out.any()


# ---- writing ---------------------------------------------------------------------------------------


def test_write_png_round_trips_grey_and_masks(tmp_path: Path, grey: np.ndarray) -> None:
    write_png(tmp_path / "g.png", grey)
    write_png(tmp_path / "sub" / "m.png", EXPECTED_SQUARE)
    assert Image.open(tmp_path / "g.png").mode == "L"
    assert np.array_equal(read_grey(tmp_path / "g.png"), grey)
    assert set(np.unique(np.asarray(Image.open(tmp_path / "sub" / "m.png")))) == {0, 255}
    assert np.array_equal(read_mask(tmp_path / "sub" / "m.png"), EXPECTED_SQUARE)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4, 4, 4), dtype=np.uint8), np.array([[object(), object()]] * 2, dtype=object)],
    ids=["4-d", "object"],
)
def test_write_png_leaves_nothing_when_the_array_is_bad(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises((TypeError, ValueError)):
        write_png(tmp_path / "out.png", bad)
    assert os.listdir(tmp_path) == []


def test_write_png_failure_keeps_the_previous_file(tmp_path: Path, grey: np.ndarray) -> None:
    target = tmp_path / "out.png"
    write_png(target, grey)
    with pytest.raises((TypeError, ValueError)):
        write_png(target, np.zeros((4, 4, 4, 4), dtype=np.uint8))
    assert os.listdir(tmp_path) == ["out.png"]
    assert np.array_equal(read_grey(target), grey)
