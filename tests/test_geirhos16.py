"""Tests for the Geirhos et al. 16-way ImageNet category mapping and its decision rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metamers.models.geirhos16 import (
    CATEGORIES,
    CATEGORY_INDICES,
    IMAGENET_TO_16,
    category_of,
    decision_16,
    probabilities_16,
)
from metamers.models.labels import imagenet_labels

# Hand-checked against the WordNet ids in rgeirhos/generalisation-humans-DNNs code/accuracy_evaluation/
# human_categories.py and the index lists in bethgelab/model-vs-human modelvshuman/helper/human_categories.py.
HAND_CHECKED = {
    0: None,  # tench
    7: None,  # cock (only n01514859 hen is listed)
    8: "bird",  # hen
    134: None,  # crane (bird), n02012849 not listed
    145: "bird",  # king penguin
    151: None,  # Chihuahua, n02085620 not listed
    152: "dog",  # Japanese spaniel
    192: None,  # cairn
    207: "dog",  # golden retriever
    268: "dog",  # Mexican hairless
    269: None,  # timber wolf
    281: "cat",  # tabby
    285: "cat",  # Egyptian cat
    286: "cat",  # cougar, n02125311 listed under cat
    287: None,  # lynx
    294: "bear",  # brown bear
    385: "elephant",  # Indian elephant
    101: None,  # tusker
    404: "airplane",  # airliner
    895: None,  # warplane
    409: "clock",  # analog clock
    892: "clock",  # wall clock
    444: "bicycle",  # bicycle-built-for-two
    499: "knife",  # cleaver
    508: "keyboard",  # computer keyboard
    878: "keyboard",  # typewriter keyboard
    651: None,  # microwave
    766: "oven",  # rotisserie
    857: "chair",  # throne
    898: "bottle",  # water bottle
    817: "car",  # sports car
    656: "truck",  # minivan
    914: "boat",  # yawl
    999: None,  # toilet tissue
}

# Expected torchvision names for every class of the small categories (all but bird and dog).
EXPECTED_NAMES = {
    "airplane": {"airliner"},
    "bear": {"brown bear", "American black bear", "ice bear", "sloth bear"},
    "bicycle": {"bicycle-built-for-two", "mountain bike"},
    "boat": {"canoe", "fireboat", "lifeboat", "speedboat", "yawl"},
    "bottle": {"beer bottle", "pill bottle", "pop bottle", "water bottle", "water jug", "whiskey jug", "wine bottle"},
    "car": {"beach wagon", "convertible", "sports car"},
    "cat": {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat", "cougar"},
    "chair": {"barber chair", "folding chair", "rocking chair", "throne"},
    "clock": {"analog clock", "digital clock", "wall clock"},
    "elephant": {"Indian elephant", "African elephant"},
    "keyboard": {"computer keyboard", "typewriter keyboard"},
    "knife": {"cleaver"},
    "oven": {"rotisserie"},
    "truck": {
        "fire engine",
        "garbage truck",
        "minivan",
        "moving van",
        "pickup",
        "police van",
        "tow truck",
        "trailer truck",
    },
}

EXPECTED_COUNTS = {
    "airplane": 1,
    "bear": 4,
    "bicycle": 2,
    "bird": 49,
    "boat": 5,
    "bottle": 7,
    "car": 3,
    "cat": 6,
    "chair": 4,
    "clock": 3,
    "dog": 109,
    "elephant": 2,
    "keyboard": 2,
    "knife": 1,
    "oven": 1,
    "truck": 8,
}


def source_rule(probabilities: np.ndarray) -> str:
    """Direct numpy transcription of the source's loop: np.mean per category, strict '>' over sorted names."""
    assert probabilities.shape == (1000,)
    best, decision = -float("inf"), None
    for category in sorted(CATEGORY_INDICES):
        value = np.mean(np.take(probabilities, list(CATEGORY_INDICES[category])))
        if value > best:
            best, decision = value, category
    return decision


def test_categories_alphabetical_and_complete():
    assert len(CATEGORIES) == 16
    assert list(CATEGORIES) == sorted(CATEGORIES)
    assert set(CATEGORIES) == {
        "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat",
        "chair", "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck",
    }  # fmt: skip
    assert tuple(CATEGORY_INDICES) == CATEGORIES


@pytest.mark.parametrize(("index", "expected"), sorted(HAND_CHECKED.items()))
def test_hand_checked_classes(index, expected):
    assert category_of(index) == expected
    assert IMAGENET_TO_16.get(index) == expected


def test_counts_nonempty_disjoint_and_consistent():
    assert {c: len(v) for c, v in CATEGORY_INDICES.items()} == EXPECTED_COUNTS
    all_indices = [i for v in CATEGORY_INDICES.values() for i in v]
    assert len(all_indices) == len(set(all_indices)) == 207  # no class in two categories
    assert all(0 <= i < 1000 for i in all_indices)
    for category, indices in CATEGORY_INDICES.items():
        assert indices, category
        assert list(indices) == sorted(indices)
        assert all(IMAGENET_TO_16[i] == category for i in indices)
    assert set(IMAGENET_TO_16) == set(all_indices)
    assert sum(category_of(i) is not None for i in range(1000)) == 207


def test_small_categories_by_name():
    names = imagenet_labels()
    for category, expected in EXPECTED_NAMES.items():
        assert {names[i] for i in CATEGORY_INDICES[category]} == expected, category


def test_bird_and_dog_ranges():
    names = imagenet_labels()
    dog = CATEGORY_INDICES["dog"]
    assert min(dog) == 152 and max(dog) == 268
    excluded = sorted(set(range(151, 269)) - set(dog))
    assert [names[i] for i in excluded] == [
        "Chihuahua", "cairn", "Lhasa", "kelpie", "boxer", "dalmatian", "Samoyed", "chow", "Cardigan",
    ]  # fmt: skip
    bird = CATEGORY_INDICES["bird"]
    assert all(i <= 24 or 80 <= i <= 100 or 127 <= i <= 145 for i in bird)
    assert {names[i] for i in (8, 16, 99, 100, 127, 144, 145)} == {
        "hen", "bulbul", "goose", "black swan", "white stork", "pelican", "king penguin",
    }  # fmt: skip


def test_category_of_rejects_bad_input():
    with pytest.raises(ValueError):
        category_of(1000)
    with pytest.raises(ValueError):
        category_of(-1)
    with pytest.raises(TypeError):
        category_of(3.0)
    assert category_of(np.int64(281)) == "cat"


def test_mappings_are_read_only():
    with pytest.raises(TypeError):
        IMAGENET_TO_16[0] = "dog"
    with pytest.raises(TypeError):
        CATEGORY_INDICES["dog"] = ()


def test_decision_matches_source_rule_on_random_logits():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 1000, generator=gen, dtype=torch.float64) * 4.0
    probs = torch.softmax(logits, dim=-1)
    expected = [CATEGORIES.index(source_rule(p)) for p in probs.numpy()]
    assert decision_16(logits).tolist() == expected
    assert decision_16(probs, from_logits=False).tolist() == expected
    assert decision_16(logits.float()).tolist() == expected
    scores = probabilities_16(logits)
    assert scores.shape == (64, 16)
    for j, c in enumerate(CATEGORIES):
        direct = probs[:, list(CATEGORY_INDICES[c])].mean(dim=1)
        torch.testing.assert_close(scores[:, j], direct)


def test_mean_rule_differs_from_plain_argmax():
    # One dog class holds the single largest probability, but the six cat classes are uniformly likely:
    # a plain argmax says dog; the source's per-category mean says cat (0.1 > 0.3 / 109).
    p = torch.zeros(1000, dtype=torch.float64)
    p[207] = 0.3  # golden retriever
    p[list(CATEGORY_INDICES["cat"])] = 0.1
    p[0] = 1.0 - p.sum()  # tench, unmapped
    assert category_of(int(p[1:].argmax()) + 1) == "dog"
    assert CATEGORIES[int(decision_16(p, from_logits=False))] == "cat"
    assert source_rule(p.numpy()) == "cat"
    assert CATEGORIES[int(decision_16(p, from_logits=False, aggregation="max"))] == "dog"


def test_mean_differs_from_sum():
    # Probability spread thinly over all 109 dog classes (sum 0.545) versus one cat class (0.05).
    p = torch.zeros(1, 1000)
    p[0, list(CATEGORY_INDICES["dog"])] = 0.005
    p[0, 281] = 0.05
    p[0, 0] = 1.0 - p.sum()
    assert CATEGORIES[int(decision_16(p, from_logits=False))] == "cat"
    assert CATEGORIES[int(decision_16(p, from_logits=False, aggregation="sum"))] == "dog"
    assert CATEGORIES[int(decision_16(p, from_logits=False, aggregation="max"))] == "cat"


def test_unmapped_mass_is_ignored():
    # Almost all mass on an unmapped class still yields a decision among the 16, driven by the mapped ones.
    logits = torch.full((1, 1000), -20.0)
    logits[0, 0] = 20.0  # tench
    logits[0, 409] = 0.0  # analog clock
    assert decision_16(logits).tolist() == [CATEGORIES.index("clock")]


def test_ties_go_to_first_category():
    p = torch.zeros(1, 1000)
    p[0, 404] = 0.5  # airplane, mean 0.5
    p[0, 499] = 0.5  # knife, mean 0.5
    assert decision_16(p, from_logits=False).tolist() == [CATEGORIES.index("airplane")]
    assert source_rule(p[0].numpy()) == "airplane"


def test_shapes_and_gradients():
    logits = torch.randn(3, 1000, requires_grad=True)
    out = probabilities_16(logits)
    assert out.shape == (3, 16)
    out[:, CATEGORIES.index("cat")].sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    single = torch.randn(1000)
    assert probabilities_16(single).shape == (16,)
    assert decision_16(single).shape == ()
    assert decision_16(single).dtype == torch.int64
    assert decision_16(torch.empty(0, 1000)).shape == (0,)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        decision_16(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="shape"):
        decision_16(torch.zeros(2, 3, 1000))
    with pytest.raises(ValueError, match="floating"):
        decision_16(torch.zeros(2, 1000, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        decision_16(torch.full((1, 1000), 2.0), from_logits=False)
    with pytest.raises(ValueError, match="aggregation"):
        probabilities_16(torch.zeros(1, 1000), aggregation="median")
    with pytest.raises(TypeError):
        decision_16(np.zeros((1, 1000)))
