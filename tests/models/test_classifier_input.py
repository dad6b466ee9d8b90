"""A model handed anything but uint8 (N, H, W, 3) images says what it got, in one line."""

import pytest
import torch

from keyless.errors import InputError
from keyless.models import create_model


@pytest.mark.parametrize(
    ("images", "words"),
    [
        (torch.rand(8, 3, 32, 32), "got float32 (8, 3, 32, 32): pass the uint8 images, the model "
                                   "does its own scaling"),
        (torch.zeros(8, 3, 32, 32, dtype=torch.uint8), "got uint8 (8, 3, 32, 32): put the "
                                                       "channels last"),
        (torch.zeros(32, 32, 3, dtype=torch.uint8), "got uint8 (32, 32, 3): one (H, W, 3) image"),
        (torch.zeros(2, 32, 32, 3).numpy(), "got ndarray: pass a torch tensor"),
    ],
)  # fmt: skip
def test_wrong_images_are_refused_in_one_line(images, words):
    model = create_model("fastnet", num_classes=4, stem="invariant", widths=(8, 16, 16))
    with pytest.raises(InputError) as caught:
        model(images)
    message = str(caught.value)
    assert message.startswith("expected uint8 images (N, H, W, 3); ") and words in message
    assert "\n" not in message
    with pytest.raises(InputError, match="float32"):
        model.init_from_data(torch.rand(8, 32, 32, 3))
    assert model(torch.zeros(2, 32, 32, 3, dtype=torch.uint8)).shape == (2, 4)
