"""The bony spine's closed-form chords equal brute-force sums along the beam.

Truth: the 3-D solids themselves (``Body.inside``, the ellipsoid equation, the disc as the
space between two bodies' endplates), sampled every 5 um along each ray.
"""

from __future__ import annotations

import numpy as np
import pytest

from vpimage.synth._anatomy import ANTERIOR_EXPONENT, POSTERIOR_EXPONENT, make_spine
from vpimage.synth._bone import _body_chord, _disc_chord, _ellipsoid_chord, bone_projection

STEP = 0.005  # mm
BEAM = np.arange(-80.0, 80.0, STEP) + STEP / 2


def rays(rng, lo, hi, n=300):
    return rng.uniform(lo[0], hi[0], n), rng.uniform(lo[1], hi[1], n)


def brute(inside, xs, ys, lateral):
    """Path length of each ray (x, y) through the solid ``inside(u, v, w)``, mm."""
    out = []
    for x, y in zip(xs, ys):
        hits = inside(x, y, BEAM) if lateral else inside(BEAM, y, x)
        out.append(np.count_nonzero(hits) * STEP)
    return np.array(out)


@pytest.fixture(scope="module")
def spine():
    spine = make_spine(np.random.default_rng(42))
    assert all(abs(b.roll) > 0.005 for b in spine.bodies[spine.treated : spine.treated + 2])  # rolled bodies
    return spine


@pytest.mark.parametrize("lateral", [True, False])
@pytest.mark.parametrize("shrink", [0.0, 0.9])
def test_body_chord(spine, lateral, shrink):
    body = spine.body
    (u0, v0, w0), (u1, v1, w1) = body.bounds(margin=1.0)
    xs, ys = rays(np.random.default_rng(1), (u0, v0) if lateral else (w0, v0), (u1, v1) if lateral else (w1, v1))
    expected = brute(lambda u, v, w: body.inside(u, v, w, shrink=shrink), xs, ys, lateral)
    assert (expected > 0).mean() > 0.5
    np.testing.assert_allclose(_body_chord(body, shrink, lateral)(xs, ys), expected, atol=2 * STEP)


def own_section(u, w, uc, a, b):
    x = (u - uc) / a
    p = np.where(x < 0, ANTERIOR_EXPONENT, POSTERIOR_EXPONENT)
    return np.abs(x) ** p + np.abs(w / b) ** p <= 1.0


@pytest.mark.parametrize("lateral", [True, False])
def test_disc_chord(spine, lateral):
    upper, lower = spine.bodies[spine.treated], spine.bodies[spine.treated + 1]
    uc, a = (upper.uc + lower.uc) / 2, (upper.depth + lower.depth) / 4 - 0.5
    b = (upper.half_width + lower.half_width) / 2 - 0.5

    def inside(u, v, w):
        # Between the endplate planes (rolled about u: they slope along w too).
        below = v - (upper.vc - w * np.tan(upper.roll)) > upper.height(u) / 2
        above = (lower.vc - w * np.tan(lower.roll)) - v > lower.height(u) / 2
        return own_section(u, w, uc, a, b) & below & above

    lo = (uc - a - 1, upper.vc) if lateral else (-b - 1, upper.vc)
    hi = (uc + a + 1, lower.vc) if lateral else (b + 1, lower.vc)
    xs, ys = rays(np.random.default_rng(2), lo, hi)
    expected = brute(inside, xs, ys, lateral)
    assert (expected > 0).mean() > 0.2
    np.testing.assert_allclose(_disc_chord(upper, lower, xs, ys, lateral), expected, atol=2 * STEP)


@pytest.mark.parametrize("lateral", [True, False])
def test_pedicle_chord_stops_at_the_posterior_wall(spine, lateral):
    pedicle = next(p for p in spine.posterior_elements if p.u_min is not None)
    (cu, cv, cw), (a, b, c) = pedicle.centre, pedicle.semi_axes

    def inside(u, v, w):
        return (((u - cu) / a) ** 2 + ((v - cv) / b) ** 2 + ((w - cw) / c) ** 2 <= 1) & (u >= pedicle.u_min)

    lo = (cu - a, cv - b) if lateral else (cw - c, cv - b)
    hi = (cu + a, cv + b) if lateral else (cw + c, cv + b)
    xs, ys = rays(np.random.default_rng(3), lo, hi)
    expected = brute(inside, xs, ys, lateral)
    np.testing.assert_allclose(_ellipsoid_chord(pedicle, 0.0, lateral)(xs, ys), expected, atol=2 * STEP)


@pytest.mark.parametrize("view", ["lateral", "ap"])
def test_projection_is_bone_only_and_positive(spine, view):
    image, origin = bone_projection(spine, view, 0.25, np.random.default_rng(0))
    assert image.dtype == np.float32 and image.min() >= 0.0
    # Through the middle of the treated body: plenty of bone; far in front of it: none.
    body = spine.body
    centre_x = body.uc if view == "lateral" else 0.0
    i, j = int(round((centre_x - origin[0]) / 0.25)), int(round((body.vc - origin[1]) / 0.25))
    assert image[i, j] > 0.3
    if view == "lateral":
        assert image[: int(round((body.u_anterior - 3 - origin[0]) / 0.25))].max() == 0.0
