"""The photographs from Debian packages: catalogue, loading from the real files, compositing, missing sources."""

import numpy as np
import pytest
import torch

from metamers.models.geirhos16 import CATEGORIES
from metamers.stimuli import IMAGES, PhotoSourceMissing, full_images, load_photos, photos, sixteen_way_photos
from metamers.stimuli.photos import PACKAGES, PHOTO_IMAGES, composite, photo_location, read_photo

SOME = ["gc_chair", "gc_cat", "gc_eiffel_tower", "tp_crow", "tp_747", "tp_elephant"]


def test_catalogue_size_sources_and_licenses():
    assert len(PHOTO_IMAGES) >= 500 and len(IMAGES) == 19 + len(PHOTO_IMAGES)
    assert {n[:3] for n in PHOTO_IMAGES} == {"gc_", "tp_"}
    for name, (what, _category, source) in PHOTO_IMAGES.items():
        assert what and "; " in source and source.rsplit("; ", 1)[1], name  # a license after the holder
        assert photo_location(name)[0] in PACKAGES


def test_sixteen_way_helper_names_valid_categories():
    sixteen = sixteen_way_photos()
    assert len(sixteen) >= 60 and set(sixteen.values()) <= set(CATEGORIES)
    assert sixteen["chelsea"] == "cat" and sixteen["tp_747"] == "airplane" and "gc_windmill" not in sixteen
    assert len(set(sixteen.values())) >= 12  # not only birds


def test_photos_load_as_images_in_unit_range():
    for t in full_images(SOME):
        assert t.ndim == 3 and t.shape[0] == 3 and t.dtype == torch.float32
        assert 0 <= t.min() and t.max() <= 1 and t.std() > 0.05
    x, names = load_photos(SOME, size=64)
    assert tuple(x.shape) == (len(SOME), 3, 64, 64) and names == SOME


@pytest.mark.slow
def test_every_catalogued_photo_is_there_and_unchanged(recwarn):
    for name in PHOTO_IMAGES:
        img = read_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 32, name
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # every hash matches


def test_stamps_are_composited_on_grey_the_same_way_each_time():
    a, b = read_photo("tp_747"), read_photo("tp_747")
    assert np.array_equal(a, b) and a.shape[0] == a.shape[1]  # square canvas: a centre crop keeps the plane
    assert a[0, 0].tolist() == [128, 128, 128]  # the transparent corner is the mid-grey background
    stamp = np.zeros((1, 3, 4), dtype=np.uint8)
    stamp[0, 1] = [255, 255, 255, 128]  # half-transparent white in the middle
    assert composite(stamp)[1].tolist() == [[128] * 3, [192] * 3, [128] * 3]


def test_a_missing_package_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("METAMERS_TUXPAINT_DIR", str(tmp_path))
    with pytest.raises(PhotoSourceMissing, match="apt-get install tuxpaint-stamps-default"):
        load_photos(["tp_crow"], size=32)
    monkeypatch.setitem(photos.PACKAGES, "gcompris-qt-data", (tmp_path / "none", *PACKAGES["gcompris-qt-data"][1:]))
    monkeypatch.delenv("METAMERS_GCOMPRIS_DIR", raising=False)
    with pytest.raises(PhotoSourceMissing, match="apt-get install gcompris-qt-data"):
        full_images(["gc_chair"])


def test_another_package_version_warns(monkeypatch):
    monkeypatch.setitem(photos._WHERE, "tp_crow", (*photos._WHERE["tp_crow"][:2], "0" * 16))
    photos._warn_version.cache_clear()
    with pytest.warns(RuntimeWarning, match="not version 2022.06.04-1"):
        read_photo("tp_crow")
