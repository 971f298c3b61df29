import os

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


# ---- experiments: real (tiny) runs whose accepted metamers feed recognition experiments ----
_IMAGE_RUN = """
name = "exp-images"
batch = 3
[stimuli]
images = ["chelsea", "coffee", "rocket"]
[synthesis.image]
iterations = 120
[validation]
pairs = 200
[transfer]
recognizers = ["efficientnet-lite0-random"]
spaces = ["16-way"]
[[model]]
name = "efficientnet-lite0"
layers = ["block_1"]
"""
_AUDIO_RUN = """
name = "exp-words"
batch = 3
[stimuli]
words = ["may", "uniform", "today"]
speech = "espeak-ng"
[synthesis.audio]
iterations = 120
lr = 0.002
[validation]
pairs = 200
[transfer]
recognizers = ["word-standard-random"]
[[model]]
name = "word-standard"
layers = ["cochleagram", "conv_0"]
"""


def _run(tmp_path_factory, name: str, plan: str):
    from metamers.runs.run import run_plan

    d = tmp_path_factory.mktemp(name)
    (d / "plan.toml").write_text(plan)
    run_plan(d / "plan.toml", d / "run", progress=False)
    return d / "run"


@pytest.fixture(scope="session")
def image_run(tmp_path_factory):
    """A finished run: EfficientNet-Lite0 metamers of 3 photos at block_1, validated, with transfer."""
    return _run(tmp_path_factory, "image-run", _IMAGE_RUN)


@pytest.fixture(scope="session")
def audio_run(tmp_path_factory):
    """A finished run: word-standard metamers of 3 espeak-ng words at the cochleagram and conv_0."""
    return _run(tmp_path_factory, "audio-run", _AUDIO_RUN)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database for the tests: ``$METAMERS_TEST_POSTGRES`` if set, else a throwaway server started here."""
    from _postgres import postgres_server

    if os.environ.get("METAMERS_TEST_POSTGRES"):
        yield os.environ["METAMERS_TEST_POSTGRES"]
        return
    with postgres_server() as url:
        yield url


@pytest.fixture
def make_experiment(tmp_path):
    """Build an experiment from a run: ``make_experiment(run, **build_experiment kwargs) -> directory``."""
    from metamers.experiments import build_experiment

    def make(run, **kw):
        kw.setdefault("participants", 4)
        kw.setdefault("practice", 2)
        kw.setdefault("catch", 1)
        out = tmp_path / f"exp{len(list(tmp_path.glob('exp*')))}"
        build_experiment(run, out, **kw)
        return out

    return make
