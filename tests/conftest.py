import numpy as np
import pytest
import torch
from skimage import data, transform

torch.set_num_threads(2)


def photo(name: str, size: int) -> torch.Tensor:
    img = getattr(data, name)().astype(np.float32) / 255
    h, w = img.shape[:2]
    k = min(h, w)
    img = img[(h - k) // 2 : (h - k) // 2 + k, (w - k) // 2 : (w - k) // 2 + k]
    img = transform.resize(img, (size, size), anti_aliasing=True)
    return torch.tensor(img, dtype=torch.float32).permute(2, 0, 1).clamp(0, 1)


@pytest.fixture(scope="session")
def lite0():
    from metamers.models import load

    return load("efficientnet-lite0")


@pytest.fixture(scope="session")
def photos128():
    return torch.stack([photo("chelsea", 128), photo("coffee", 128)])
