"""LAB conversions, histogram matching and frame colour matching (`i2v_core.colour`)."""

import numpy as np
import pytest

from i2v_core.colour import colour_match, lab_to_rgb, match_histogram, rgb_to_lab


def scene(height: int = 48, width: int = 64) -> np.ndarray:
    """`(H, W, 3)` uint8: moderately saturated gradients with a warm patch (in gamut after shifts)."""
    yy, xx = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    rgb = np.stack([0.3 + 0.4 * xx, 0.35 + 0.3 * yy, 0.6 - 0.3 * xx * yy], axis=-1)
    rgb[height // 4 : height // 2, width // 4 : width // 2] = (0.75, 0.5, 0.35)
    return np.round(rgb * 255).astype(np.uint8)


def shift_ab(image: np.ndarray, da: float, db: float) -> np.ndarray:
    lab = rgb_to_lab(image)
    lab[..., 1] += da
    lab[..., 2] += db
    return lab_to_rgb(lab)


@pytest.mark.parametrize(
    "rgb,lab",
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
        ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
        ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ],
)
def test_known_lab_values(rgb, lab):
    got = rgb_to_lab(np.array(rgb, np.uint8))
    assert got.dtype == np.float32 and got.shape == (3,)
    np.testing.assert_allclose(got, lab, atol=0.01)
    np.testing.assert_allclose(rgb_to_lab(np.array(rgb, np.float64) / 255), lab, atol=0.01)


def test_lab_round_trip_within_one_level():
    grid = np.arange(0, 256, 5, dtype=np.uint8)  # includes 0 and 255
    r, g, b = np.meshgrid(grid, grid, grid, indexing="ij")
    colours = np.concatenate(
        [np.stack([r, g, b], -1).reshape(-1, 3), np.random.default_rng(0).integers(0, 256, (50_000, 3), np.uint8)]
    )
    back = lab_to_rgb(rgb_to_lab(colours))
    assert back.dtype == np.uint8 and back.shape == colours.shape
    assert np.abs(back.astype(int) - colours).max() <= 1


def test_lab_clips_out_of_gamut_and_checks_shape():
    assert lab_to_rgb(np.array([50.0, 200.0, 0.0])).tolist() == [255, 0, 130]  # clipped, not wrapped
    assert lab_to_rgb(np.array([150.0, 0.0, 0.0])).tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match=r"expected RGB values of shape \(\.\.\., 3\), got \(4, 4\) uint8"):
        rgb_to_lab(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="expected RGB values as uint8 or float, got int64"):
        rgb_to_lab(np.zeros((2, 3), np.int64))


def test_match_histogram_is_the_monotone_cdf_map():
    rng = np.random.default_rng(1)
    source = rng.permutation(100).reshape(10, 10)
    reference = np.repeat(np.arange(100) * 2.0 + 50.0, 4)  # other size and shape, same quantiles
    matched = match_histogram(source, reference)
    assert matched.shape == source.shape
    np.testing.assert_array_equal(matched, source * 2.0 + 50.0)


def test_match_histogram_keeps_float_dtype_and_ties():
    source = np.array([0.1, 0.1, 0.5, 0.9], np.float32)
    reference = np.array([10.0, 20.0, 30.0, 40.0])
    matched = match_histogram(source, reference)
    assert matched.dtype == np.float32
    assert matched[0] == matched[1] and matched[1] < matched[2] < matched[3] == 40.0
    with pytest.raises(ValueError, match="non-empty source"):
        match_histogram(np.array([]), reference)
    with pytest.raises(ValueError, match="finite values in reference"):
        match_histogram(source, np.array([1.0, np.nan]))


def test_colour_match_pulls_ab_to_the_reference_and_keeps_l():
    ref = scene()
    shifted = shift_ab(ref, 12.0, -9.0)
    frames = np.stack([ref, shifted, ref])
    out = colour_match(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], ref)
    np.testing.assert_array_equal(out[2], ref)  # equal to the reference: untouched

    ref_lab, before, after = rgb_to_lab(ref), rgb_to_lab(shifted), rgb_to_lab(out[1])
    assert abs(before[..., 1].mean() - ref_lab[..., 1].mean()) > 8  # the shift was real
    np.testing.assert_allclose(after[..., 1:].mean(axis=(0, 1)), ref_lab[..., 1:].mean(axis=(0, 1)), atol=1.0)
    assert np.abs(after[..., 0] - before[..., 0]).mean() < 1.0  # lightness kept from the frame


def test_colour_match_lightness_and_explicit_reference():
    ref = scene()
    lab = rgb_to_lab(ref)
    lab[..., 0] = np.clip(lab[..., 0] + 15.0, 0, 100)
    brighter = lab_to_rgb(lab)
    frames = np.stack([brighter, brighter])
    out = colour_match(frames, reference=ref, channels=("L", "a", "b"))
    got = rgb_to_lab(out[0])
    assert abs(got[..., 0].mean() - rgb_to_lab(ref)[..., 0].mean()) < 1.0
    np.testing.assert_array_equal(out[0], out[1])


def test_colour_match_argument_errors():
    frames = np.stack([scene(8, 8)] * 2)
    with pytest.raises(ValueError, match=r"expected LAB channels from \('L', 'a', 'b'\).*got \('c',\)"):
        colour_match(frames, channels=("c",))
    with pytest.raises(ValueError, match=r"expected frames of shape \(F, H, W, 3\) uint8, got \(8, 8, 3\) uint8"):
        colour_match(frames[0])
    with pytest.raises(ValueError, match="expected an RGB image array"):
        colour_match(frames, reference=frames[0].astype(np.float32))
