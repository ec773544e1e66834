"""FaceBox geometry (the type every face-based metric receives)."""

import numpy as np
import pytest

from interactive_eyes.faces.types import FaceBox, iou


def test_facebox_geometry():
    b = FaceBox(10, 20, 50, 100, 0.9)
    assert (b.width, b.height, b.side) == (40, 80, 80)
    assert b.center == (30, 60)
    np.testing.assert_array_equal(b.as_array(), [10, 20, 50, 100])
    assert b.scaled(2.0) == FaceBox(20, 40, 100, 200, 0.9)
    assert b.shifted(1, -1) == FaceBox(11, 19, 51, 99, 0.9)


def test_from_points_is_the_tight_box():
    pts = np.array([[3.0, 7.0], [10.0, 2.0], [5.0, 9.0]])
    assert FaceBox.from_points(pts) == FaceBox(3.0, 2.0, 10.0, 9.0, 1.0)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (FaceBox(0, 0, 10, 10), FaceBox(0, 0, 10, 10), 1.0),
        (FaceBox(0, 0, 10, 10), FaceBox(5, 0, 15, 10), 50 / 150),
        (FaceBox(0, 0, 10, 10), FaceBox(10, 10, 20, 20), 0.0),
        (FaceBox(0, 0, 10, 10), FaceBox(2, 2, 4, 4), 4 / 100),
    ],
)
def test_iou(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)


def test_metric_contract_reexports_the_same_class():
    from interactive_eyes.metrics.base import FaceBox as ContractBox

    assert ContractBox is FaceBox
