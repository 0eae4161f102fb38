"""kdlab.data.drawing: a drawing becomes an input the way the dataset's own images were made."""
import numpy as np
import pytest
import torch

from kdlab.data.drawing import DrawingError, ink_of, to_input


def _as_drawn(data, i: int, size: int = 224) -> np.ndarray:
    """Test image i of ``data``, back in raw pixels and enlarged to a canvas: white ink on black, uint8."""
    raw = data.x_test[i, 0].numpy() * data.pixels.std + data.pixels.mean
    scale = size // raw.shape[0]
    return (np.kron(raw / data.pixels.ink, np.ones((scale, scale))) * 255).clip(0, 255).astype(np.uint8)


def test_the_teacher_reads_digits_own_images_redrawn(digits, kdlab_cache, torch_one_thread):
    from kdlab.base.config import TeacherConfig
    from kdlab.runs.teacher import get_teacher

    teacher = get_teacher(TeacherConfig(), digits)  # the default teacher, 96.9 % on the test split
    right = 0
    for i in range(200):
        x, raw = to_input(_as_drawn(digits, i), digits)
        assert x.shape == (1, *digits.input_shape) and raw.shape == (8, 8) and 0 <= raw.min() <= raw.max() <= 16
        with torch.no_grad():
            right += int(teacher.model(x).argmax(1).item() == int(digits.y_test[i]))
    assert right / 200 >= 0.9  # a drawing goes through the preprocessing the dataset's images went through


def test_ink_is_bright_whatever_the_background():
    dark_on_light = np.full((50, 50, 3), 250, np.uint8)
    dark_on_light[10:40, 20:25] = 10  # a stroke of ink on paper
    ink = ink_of(dark_on_light)
    assert ink[20, 22] > 0.9 and ink[0, 0] < 0.1
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:40, 20:25] = (255, 255, 255, 255)  # the canvas: white strokes, transparent elsewhere
    assert ink_of(rgba)[20, 22] == pytest.approx(1.0) and ink_of(rgba)[0, 0] == 0


def test_a_blank_canvas_and_a_non_image_dataset_are_messages(digits):
    with pytest.raises(DrawingError, match="blank"):
        to_input(np.zeros((224, 224, 4), np.uint8), digits)
    from kdlab.data import load_dataset

    with pytest.raises(DrawingError, match="no images"):
        to_input(np.full((224, 224), 255, np.uint8), load_dataset("moons"))


def test_mnist_style_centres_the_digit_by_its_mass():
    from kdlab.data.drawing import _centred_by_mass

    ink = np.zeros((100, 40), np.float32)
    ink[:, 10:30] = 1.0
    out = _centred_by_mass(ink)
    assert out.shape == (28, 28) and out[:4].sum() == 0 and out[-4:].sum() == 0  # fitted into the 20 x 20 box
    ys, xs = np.indices(out.shape)
    assert abs((ys * out).sum() / out.sum() - 13.5) <= 1 and abs((xs * out).sum() / out.sum() - 13.5) <= 1
