import sqlite3

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from metamers import synthesize
from metamers.cli import main
from metamers.modality import as_displayed
from metamers.nulls import NullStore, compute_nulls, null_rho, standardized_ranks
from metamers.report.tables import summary_table, table_csv
from metamers.runs.validate import images_per_source, validate_dir
from metamers.validation import (
    AcceptanceRule,
    compare_layers,
    verdict,
)


def test_rank_gram_spearman_equals_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    acts = torch.randint(0, 7, (12, 300), generator=g).float()  # many ties
    z = standardized_ranks(acts)
    gram = (z @ z.T).numpy()
    ref = stats.spearmanr(acts.numpy(), axis=1).statistic
    assert np.allclose(gram, ref, atol=1e-5)


def test_null_in_tiles_equals_null_at_once():
    z = standardized_ranks(torch.randn(60, 500))
    groups = torch.arange(60) // 3
    once = null_rho(z, n_pairs=1500, seed=1, groups=groups, max_bytes=1 << 30)
    tiled = null_rho(z, n_pairs=1500, seed=1, groups=groups, max_bytes=7 * 2 * 4 * 500)  # 7-row tiles
    memmapped = null_rho(z.numpy(), n_pairs=1500, seed=1, groups=groups, max_bytes=7 * 2 * 4 * 500)
    assert torch.allclose(once, tiled, atol=1e-6)
    assert torch.allclose(once, memmapped, atol=1e-6)


def test_null_on_disk_equals_null_in_ram(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 8))
    x = torch.randn(40, 16)
    src = torch.arange(40) // 4

    def batches():
        for i in range(0, 40, 6):
            yield x[i : i + 6], src[i : i + 6]

    ram = compute_nulls(net, ["1", "2"], batches(), n_pairs=500, seed=3)
    disk = compute_nulls(net, ["1", "2"], batches(), n_pairs=500, seed=3, total=40, max_bytes=1000, workdir=tmp_path)
    for lay in ("1", "2"):
        assert torch.allclose(ram[lay], disk[lay], atol=1e-6)


def test_pairs_from_one_source_are_excluded():
    base = torch.randn(5, 200)
    acts = base.repeat_interleave(4, dim=0)  # 4 identical views of each source: rho 1 within a source
    z = standardized_ranks(acts)
    rho = null_rho(z, groups=torch.arange(20) // 4)
    assert rho.numel() == 20 * 19 // 2 - 5 * 6
    assert rho.max() < 0.5


def test_asking_for_more_pairs_than_exist_says_what_to_do():
    with pytest.raises(ValueError, match=r"only 45 distinct pairs.*more augmentations"):
        null_rho(standardized_ranks(torch.randn(10, 20)), n_pairs=46)


def test_verdicts_give_their_reasons():
    null = torch.tensor([0.1, 0.2, 0.35])
    assert verdict(0.9, null, 1, 1).accepted
    inside = verdict(0.3, null, 1, 1)
    assert not inside.accepted and "inside the null (must exceed 0.3500, the null maximum)" in inside.reason
    label = verdict(0.9, null, 2, 1, names=lambda k: ["cat", "dog", "car"][k])
    assert not label.accepted and label.reason == "the model labels it 'car', its stimulus 'dog'"
    lenient = verdict(0.3, null, 1, 1, AcceptanceRule(null_percentile=50))
    assert lenient.accepted and lenient.threshold == pytest.approx(0.2)


def test_matching_metamer_passes_and_noise_fails():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 4))
    x = torch.rand(6, 3, 16, 16)
    null = compute_nulls(net, ["1"], [(torch.rand(60, 3, 16, 16), torch.arange(60))], n_pairs=None)["1"]
    good = synthesize(net, x, "1", iterations=400, lr=0.02)
    sims = compare_layers(net, good.metamers, x, ["1", "3"])
    labels_m, labels_s = net(good.metamers).argmax(1), net(x).argmax(1)
    for i in range(6):
        v = verdict(float(sims["1"]["spearman"][i]), null, int(labels_m[i]), int(labels_s[i]))
        assert v.accepted, v.reason
    noise = torch.rand(6, 3, 16, 16)  # an unrelated stimulus: one more draw from the null's distribution
    sims = compare_layers(net, noise, x, ["1"])
    for i in range(6):
        v = verdict(float(sims["1"]["spearman"][i]), null, 0, 0)
        assert not v.accepted and "inside the null" in v.reason


def test_summary_table_and_csv():
    recs = [
        dict(model="m", layer="a", accepted=a, features=10, rho_layer=r, rho_logits=0.99, null_median=0.1)
        for a, r in [(True, 0.9), (False, 0.5), (True, 0.95)]
    ]
    (row,) = summary_table(recs)
    assert (row["generated"], row["accepted"], row["median_rho_layer"]) == (3, 2, 0.9)
    text = table_csv([row])
    assert text.splitlines()[0].startswith("model,layer,generated,accepted,features")


def test_images_per_source_gives_enough_pairs():
    for pairs, sources in [(1_000_000, 17), (5000, 17), (100, 2)]:
        k = images_per_source(pairs, sources)
        assert k * k * sources * (sources - 1) // 2 >= pairs
        assert (k - 1) ** 2 * sources * (sources - 1) // 2 < pairs


def test_as_displayed_is_what_the_png_holds(tmp_path):
    from PIL import Image

    from metamers.stimuli import save_png

    x = torch.rand(3, 8, 8)
    save_png(x, tmp_path / "a.png")
    back = torch.from_numpy(np.array(Image.open(tmp_path / "a.png"))).permute(2, 0, 1).float() / 255
    assert torch.equal(back, as_displayed(x))


@pytest.mark.slow
def test_validate_a_directory_end_to_end(tmp_path, lite0, capsys):
    from metamers.stimuli import load_photos

    x, names = load_photos(["chelsea", "coffee"], size=224)
    good = synthesize(lite0.module, x, "net._swish@0", iterations=150, lr=0.01)
    noise = synthesize(lite0.module, x, "net._blocks.15", iterations=0)
    for tag, r in (("good", good), ("noise", noise)):
        r.extra.update(model="efficientnet-lite0", stimuli=names)
        r.save(tmp_path / f"{tag}.safetensors")
    out = validate_dir(tmp_path, n_pairs=3000)
    verdicts = {(m["layer"], m["stimulus"]): m for m in out["metamers"]}
    assert verdicts[("net._swish@0", "chelsea")]["accepted"]
    assert verdicts[("net._swish@0", "coffee")]["accepted"]
    for name in names:
        m = verdicts[("net._blocks.15", name)]
        assert not m["accepted"] and "inside the null" in m["reason"]
    rows = {r["layer"]: r for r in out["table"]}
    assert rows["net._swish@0"]["accepted"] == 2 and rows["net._blocks.15"]["accepted"] == 0
    assert rows["net._swish@0"]["features"] == 32 * 112 * 112
    db = sqlite3.connect(tmp_path / "catalog.sqlite")
    assert db.execute("SELECT COUNT(*) FROM metamers").fetchone() == (4,)
    assert db.execute("SELECT COUNT(DISTINCT measured_layer) FROM layer_similarity").fetchone()[0] == 10
    assert out["figures"][0].exists() and (tmp_path / "validation_table.csv").exists()
    # the nulls are stored and reused: a second validation computes none
    n_files = len(list((tmp_path / "nulls").glob("*.safetensors")))
    assert n_files == 10
    stored = NullStore(tmp_path / "nulls")
    before = {p: p.stat().st_mtime_ns for p in stored.directory.glob("*.safetensors")}
    assert main(["validate", str(tmp_path), "--pairs", "3000"]) == 0  # the CLI, on the same directory
    printed = capsys.readouterr().out
    assert "net._swish@0" in printed and "rejected: efficientnet-lite0 net._blocks.15 chelsea" in printed
    assert {p: p.stat().st_mtime_ns for p in stored.directory.glob("*.safetensors")} == before  # reused
