"""Training the word networks on the speech corpus: cached cochleagrams, Adam, early stopping, checkpoints, resume.

The networks never see waveforms during training: the cochleagram is fixed (it has no parameters), so each corpus
split's cochleagrams are computed once and cached beside it (``cochleagrams.npy``, float16). Synthesis, in contrast,
runs the waveform through the same :class:`~metamers.audio.cochleagram.Cochleagram` with gradients.

Early stopping follows the paper in spirit: the paper stopped every network at a fixed validation accuracy so that
models were matched in performance (57% correct on words); here training stops at ``target_accuracy`` when one is
given, else when validation accuracy has not improved for ``patience`` epochs, and the best epoch's weights are kept.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .._files import atomic_path
from .cochleagram import Cochleagram, CochleagramSettings
from .corpus import INT16_SCALE
from .word_nets import ARCHITECTURES, TASKS, WordNet

__all__ = ["TrainSettings", "TrainingError", "band_limit", "cached_cochleagrams", "evaluate", "train_word_net"]


class TrainingError(RuntimeError):
    """A training run cannot start or resume as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class TrainSettings:
    """How a word network is trained.

    Attributes
    ----------
    architecture : {"standard", "reduced_aliasing"}
    width : float
        Channel scale (1.0 = the paper's size).
    task : {"word", "background", "joint"}
        Which labels the heads learn; "joint" trains the word head and the background head together.
    epochs : int
        Upper bound on passes over the training split.
    batch_size : int
    lr : float
        Adam learning rate.
    weight_decay : float
    patience : int
        Epochs without a better validation accuracy before stopping.
    target_accuracy : float or None
        Stop as soon as validation accuracy (main head) reaches this (the paper's matched-performance rule).
    lowpass_prob : float
        Fraction of training clips band-limited at random (see :func:`band_limit`): the synthetic training voices
        reach 10 kHz, real telephone recordings stop at 4 kHz, and a network that leans on the top octave fails on
        them.
    lowpass_hz : (float, float)
        Range of the random cut-off frequency.
    max_minutes : float or None
        Stop after this much training time (the best epoch so far is kept).
    seed : int
    background_weight : float
        Joint task only: the background head's loss is scaled by this before it is added to the word head's. With
        equal weights (1.0) the easy background task takes the shared layers first and the word head sat at chance
        (1.0-1.8% validation accuracy after 2-3 epochs, both architectures, against 15-30% for the word task alone);
        at 0.1 it learns nearly as fast as alone. The paper does not give its weighting.
    """

    architecture: str = "standard"
    width: float = 0.125
    task: str = "word"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 4
    target_accuracy: float | None = None
    lowpass_prob: float = 0.5
    lowpass_hz: tuple[float, float] = (3400.0, 8000.0)
    max_minutes: float | None = None
    seed: int = 0
    background_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise TrainingError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}.")
        if self.task not in TASKS:
            raise TrainingError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainingError("epochs and batch_size must be at least 1.")
        if not self.background_weight > 0:
            raise TrainingError(f"background_weight must be above 0, got {self.background_weight}.")
        if not 0 <= self.lowpass_prob <= 1:
            raise TrainingError(f"lowpass_prob must be in [0, 1], got {self.lowpass_prob}.")
        object.__setattr__(self, "lowpass_hz", tuple(float(v) for v in self.lowpass_hz))

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def cached_cochleagrams(
    split_dir: str | os.PathLike,
    settings: CochleagramSettings | None = None,
    batch_size: int = 16,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """The cochleagrams of a corpus split ``[N, 211, 400]`` (float16, memory-mapped), computed once and cached.

    The cache sits in the split folder as ``cochleagrams.npy`` with a ``cochleagrams.json`` naming the cochleagram
    settings and the waveform file it came from; it is rebuilt when either changes. Writing goes to a temporary file
    renamed at the end, so an interrupted run never leaves a cache that looks complete.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(d / "waves.npy", np.zeros((2, 2000), dtype=np.int16))
    >>> cached_cochleagrams(d, CochleagramSettings(n_samples=2000), progress=False).shape
    (2, 211, 20)
    """
    split_dir = Path(split_dir)
    settings = settings or CochleagramSettings()
    waves_path = split_dir / "waves.npy"
    if not waves_path.exists():
        raise TrainingError(f"{waves_path} not found: build the corpus first (`metamers corpus`).")
    stat = waves_path.stat()
    key = {"settings": settings.to_dict(), "waves_size": stat.st_size, "waves_mtime_ns": stat.st_mtime_ns}
    out, meta = split_dir / "cochleagrams.npy", split_dir / "cochleagrams.json"
    if out.exists() and meta.exists() and json.loads(meta.read_text()) == key:
        return np.load(out, mmap_mode="r")
    waves = np.load(waves_path, mmap_mode="r")
    if waves.shape[1] != settings.n_samples:
        raise TrainingError(
            f"the corpus clips have {waves.shape[1]} samples, the cochleagram expects {settings.n_samples}."
        )
    scale = 1 / INT16_SCALE if waves.dtype == np.int16 else 1.0
    tmp = split_dir / "cochleagrams.npy.partial"
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(waves), *settings.shape))
    coch = Cochleagram(settings).to(device)
    with torch.no_grad():
        starts = range(0, len(waves), batch_size)
        for start in tqdm(starts, desc=f"cochleagrams {split_dir.name}", disable=not progress):
            x = torch.from_numpy(np.asarray(waves[start : start + batch_size], dtype=np.float32) * scale).to(device)
            arr[start : start + len(x)] = coch(x)[:, 0].cpu().numpy().astype(np.float16)
    arr.flush()
    del arr
    os.replace(tmp, out)
    meta.write_text(json.dumps(key))
    return np.load(out, mmap_mode="r")


def band_limit(
    cochleagrams: torch.Tensor, centres_hz: torch.Tensor, cutoff_hz: torch.Tensor, power: float = 0.3, order: int = 8
) -> torch.Tensor:
    """Cochleagrams of the waveforms after a low-pass filter, computed from the cochleagrams themselves.

    A filter with a smooth amplitude response ``H(f)`` scales each narrow cochlear subband by about ``H`` at its
    centre frequency, so the compressed envelope is scaled by ``H ** power``. ``H`` is an order-``order``
    Butterworth magnitude response at ``cutoff_hz`` (one cut-off per item).

    Parameters
    ----------
    cochleagrams : torch.Tensor
        ``[batch, (1,) channels, frames]``.
    centres_hz : torch.Tensor
        Centre frequency of each channel.
    cutoff_hz : torch.Tensor
        ``[batch]`` cut-offs (``inf`` leaves an item unchanged).

    Examples
    --------
    >>> c = torch.ones(1, 3, 2)
    >>> band_limit(c, torch.tensor([500.0, 4000.0, 8000.0]), torch.tensor([4000.0]))[0, :, 0]
    tensor([1.0000, 0.9013, 0.1895])
    """
    ratio = centres_hz.view(1, -1) / cutoff_hz.view(-1, 1)
    gain = (1 + ratio ** (2 * order)) ** (-0.5 * power)
    shape = [gain.shape[0]] + [1] * (cochleagrams.dim() - 3) + [gain.shape[1], 1]
    return cochleagrams * gain.view(shape).to(cochleagrams.dtype)


def _random_cutoffs(n: int, settings: TrainSettings) -> torch.Tensor:
    lo, hi = settings.lowpass_hz
    cut = torch.exp(torch.empty(n).uniform_(math.log(lo), math.log(hi)))
    return torch.where(torch.rand(n) < settings.lowpass_prob, cut, torch.full((n,), math.inf))


@dataclass
class _Split:
    x: torch.Tensor  # float16 cochleagrams [N, C, T]
    words: torch.Tensor
    backgrounds: torch.Tensor


def _load_split(root: Path, split: str, coch: CochleagramSettings, progress: bool) -> _Split:
    d = root / split
    if not (d / "words.npy").exists():
        raise TrainingError(f"corpus split {split!r} not found in {root}: build it with `metamers corpus {root}`.")
    x = torch.from_numpy(np.array(cached_cochleagrams(d, coch, progress=progress)))  # into memory
    words = torch.from_numpy(np.load(d / "words.npy")).long()
    backgrounds = torch.from_numpy(np.load(d / "backgrounds.npy")).long()
    return _Split(x, words, backgrounds)


def _targets(split: _Split, task: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    if task == "word":
        return split.words, None
    if task == "background":
        return split.backgrounds, None
    return split.words, split.backgrounds


def evaluate(
    net: WordNet,
    x: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    head: str = "main",
) -> tuple[float, np.ndarray]:
    """Accuracy of one head on cochleagrams ``x`` (labels < 0 are skipped), and the predictions.

    ``head`` is ``"main"`` (``logits``) or ``"background"`` (a joint-task network's ``logits_background``).

    Examples
    --------
    >>> net = WordNet(3, width=0.125).eval()
    >>> acc, pred = evaluate(net, torch.zeros(4, 211, 400), torch.tensor([0, 1, 2, -1]))
    >>> pred.shape, 0.0 <= acc <= 1.0
    ((4,), True)
    """
    if head not in ("main", "background") or (head == "background" and net.logits_background is None):
        raise ValueError(f"head must be 'main', or 'background' for a joint-task network; got {head!r}.")
    was = net.training
    net.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device).float().unsqueeze(1)
            out = net(xb) if head == "main" else net.heads(xb)[1]
            preds.append(out.argmax(1).cpu())
    net.train(was)
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    keep = labels >= 0
    acc = float((pred[keep] == labels[keep]).float().mean()) if keep.any() else math.nan
    return acc, pred.numpy()


@dataclass
class _State:
    epoch: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = -1
    since_best: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    stopped: str = ""
    # within an epoch (a checkpoint every few minutes, so that a long epoch is not lost): the next step, the epoch's
    # order of the training clips, its running loss sum and clip count, and its seconds so far
    step: int = 0
    order: list[int] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_count: int = 0
    epoch_seconds: float = 0.0


_MID_EPOCH_SECONDS = 300.0
"""How often a long epoch is checkpointed between its ends (wall-clock seconds)."""


_STOPPING = ("epochs", "patience", "target_accuracy", "max_minutes")


def _recipe(run_key: dict) -> dict:
    """What makes two runs the same run: everything but the stopping rules (a run may be extended or cut short)."""
    settings = {k: v for k, v in run_key["settings"].items() if k not in _STOPPING}
    if settings.get("task") == "joint":
        settings.setdefault("background_weight", 1.0)  # checkpoints from before the setting summed the losses
    else:
        settings.pop("background_weight", None)  # only the joint task reads it
    return {**run_key, "settings": settings}


def _save_atomic(obj: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train_word_net(
    corpus_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: TrainSettings | None = None,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    eval_splits: tuple[str, ...] | None = None,
) -> dict:
    """Train a word network on a built corpus; checkpoint every epoch; resume if ``out_dir`` holds a checkpoint.

    Writes ``out_dir/checkpoint.pt`` (everything needed to resume), ``out_dir/model.pt`` (the best epoch's state
    dict) and ``out_dir/card.json`` (settings, corpus, history, held-out accuracies), and returns the card.

    Parameters
    ----------
    corpus_root : path
        A corpus built by :func:`metamers.audio.corpus.build_corpus` with ``train`` and ``valid`` splits.
    out_dir : path
        Where the run lives; a second call resumes it. A different recipe (architecture, width, task, batch size,
        learning rate, augmentation, seed, corpus) is refused; the stopping rules (epochs, patience, target accuracy,
        time limit) may change, e.g. to extend a finished run.
    settings : TrainSettings, optional
    device : str, optional
        Default: CUDA when present, else CPU.
    progress : bool
        Show progress bars.
    eval_splits : tuple of str, optional
        Held-out splits to score the best weights on at the end (skipped when absent); default every ``test-*``
        split the corpus holds (the default corpus's ``test-flite`` and ``test-recorded``, the real corpus's
        ``test-flite`` and one per held-out speaker group, and their ``-clean`` twins when built).

    Examples
    --------
    >>> TrainSettings(architecture="reduced_aliasing", width=0.125).task
    'word'
    """
    settings = settings or TrainSettings()
    root, out = Path(corpus_root), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    meta_path = root / "train" / "meta.json"
    if not meta_path.exists():
        raise TrainingError(f"no corpus at {root} (no train/meta.json): build it with `metamers corpus {root}`.")
    meta = json.loads(meta_path.read_text())
    vocabulary = list(meta["vocabulary"])
    backgrounds = list(meta["background_classes"])
    coch = CochleagramSettings()
    train = _load_split(root, "train", coch, progress)
    valid = _load_split(root, "valid", coch, progress)

    n_main = len(backgrounds) if settings.task == "background" else len(vocabulary)
    n_bg = len(backgrounds) if settings.task == "joint" else 0
    torch.manual_seed(settings.seed)
    # channels-last memory: oneDNN's depthwise convolutions (the hanning pools) run faster on it; same values
    net = WordNet(n_main, settings.architecture, settings.width, n_bg).to(device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    state = _State()
    ckpt_path = out / "checkpoint.pt"
    corpus_hash = meta.get("spec_hash", meta.get("hash"))
    run_key = {"settings": settings.to_dict(), "corpus": corpus_hash, "n_train": len(train.x)}
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if _recipe(ckpt["run_key"]) != _recipe(run_key):
            raise TrainingError(
                f"{out} holds a different training run ({ckpt['run_key']['settings']}); "
                "pick another output folder, or delete that one to start over."
            )
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = _State(**ckpt["state"])
        torch.set_rng_state(ckpt["rng"])
        if state.stopped.startswith("ran all") or state.stopped.startswith("reached the time"):
            state.stopped = ""  # the limit that stopped it may have been raised

    main_train, bg_train = _targets(train, settings.task)
    centres = torch.from_numpy(Cochleagram(coch).centre_frequencies).float()
    main_valid, _ = _targets(valid, settings.task)
    n = len(train.x)
    steps = math.ceil(n / settings.batch_size)

    def save(state: _State) -> None:
        ckpt = {
            "run_key": run_key,
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "state": asdict(state),
            "rng": torch.get_rng_state(),
        }
        _save_atomic(ckpt, ckpt_path)

    while not state.stopped and state.epoch < settings.epochs:
        t0 = time.perf_counter() - state.epoch_seconds
        net.train()
        resumed = len(state.order) == n and state.step > 0  # inside an epoch: its order, from its next step
        order = torch.tensor(state.order) if resumed else torch.randperm(n)
        total, count = (state.loss_sum, state.loss_count) if resumed else (0.0, 0)
        first = state.step if resumed else 0
        last_save = time.perf_counter()
        bar = tqdm(
            range(first, steps),
            desc=f"epoch {state.epoch + 1}/{settings.epochs}",
            disable=not progress,
            leave=False,
            initial=first,
            total=steps,
        )
        for step in bar:
            idx = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            xb = train.x[idx].float()
            if settings.lowpass_prob > 0:
                xb = band_limit(xb, centres, _random_cutoffs(len(idx), settings))
            xb = xb.to(device).unsqueeze(1)
            logits, logits_bg = net.heads(xb)
            loss = F.cross_entropy(logits, main_train[idx].to(device), ignore_index=-1)
            if logits_bg is not None:
                bg_loss = F.cross_entropy(logits_bg, bg_train[idx].to(device), ignore_index=-1)
                loss = loss + settings.background_weight * bg_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{total / count:.3f}")
            if time.perf_counter() - last_save > _MID_EPOCH_SECONDS and step + 1 < steps:
                state.step, state.order, state.loss_sum, state.loss_count = step + 1, order.tolist(), total, count
                state.epoch_seconds = time.perf_counter() - t0
                save(state)
                last_save = time.perf_counter()
        acc, _ = evaluate(net, valid.x, main_valid, device=device)
        state.seconds += time.perf_counter() - t0
        state.step, state.order, state.loss_sum, state.loss_count, state.epoch_seconds = 0, [], 0.0, 0, 0.0
        state.epoch += 1
        state.history.append({"epoch": state.epoch, "train_loss": total / count, "valid_accuracy": acc})
        if acc > state.best_accuracy:
            state.best_accuracy, state.best_epoch, state.since_best = acc, state.epoch, 0
            _save_atomic(net.state_dict(), out / "model.pt")
        else:
            state.since_best += 1
        if progress:
            tqdm.write(f"epoch {state.epoch}: train loss {total / count:.3f}, valid accuracy {acc:.3f}")
        if settings.target_accuracy is not None and acc >= settings.target_accuracy:
            state.stopped = f"reached the target validation accuracy {settings.target_accuracy:g}"
        elif state.since_best >= settings.patience:
            state.stopped = f"no better validation accuracy for {settings.patience} epochs"
        elif settings.max_minutes is not None and state.seconds / 60 >= settings.max_minutes:
            state.stopped = f"reached the time limit of {settings.max_minutes:g} minutes"
        save(state)
    if not state.stopped:
        state.stopped = f"ran all {settings.epochs} epochs"

    net.load_state_dict(torch.load(out / "model.pt", map_location=device, weights_only=True))
    held_out = {}
    if eval_splits is None:
        eval_splits = tuple(sorted(d.name for d in root.glob("test-*") if (d / "words.npy").exists()))
    for split in eval_splits:
        if (root / split / "words.npy").exists():
            data = _load_split(root, split, coch, progress)
            labels, _ = _targets(data, settings.task)
            if not bool((labels >= 0).any()):  # nothing to score: a clean split has no background to name
                continue
            acc, pred = evaluate(net, data.x, labels, device=device)
            held_out[split] = {
                "accuracy": acc,
                "clips": len(data.x),
                "source": _split_source(root / split),
                "speakers": _per_speaker(root / split, labels.numpy(), pred),
            }
    background_head = {}
    if settings.task == "joint":  # the second head, on the same validation clips (the words are the main head's)
        bg_acc, _ = evaluate(net, valid.x, valid.backgrounds, device=device, head="background")
        background_head = {"valid_background_accuracy": bg_acc}
    card = {
        "architecture": settings.architecture,
        "width": settings.width,
        "task": settings.task,
        "classes": backgrounds if settings.task == "background" else vocabulary,
        "background_classes": backgrounds if settings.task == "joint" else [],
        "cochleagram": coch.to_dict(),
        "training": settings.to_dict(),
        "corpus": {"root": str(root), "hash": run_key["corpus"], "train_clips": n, "valid_clips": len(valid.x)},
        "stopped": state.stopped,
        "best_epoch": state.best_epoch,
        "valid_accuracy": state.best_accuracy,
        **background_head,
        "held_out": held_out,
        "history": state.history,
        "train_minutes": round(state.seconds / 60, 2),
        "device": str(device),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2))
    return card


def _per_speaker(split_dir: Path, labels: np.ndarray, pred: np.ndarray) -> dict[str, dict]:
    """Accuracy and clip count per voice of a held-out split (a real speaker, or a synthetic voice over all its speeds
    and pitches); empty when the split does not name its speakers."""
    try:
        speakers = json.loads((split_dir / "meta.json").read_text())["speakers"]
        index = np.load(split_dir / "speakers.npy")
    except (OSError, ValueError, KeyError):
        return {}
    voice = np.array([str(s.get("voice", s)) if isinstance(s, dict) else str(s) for s in speakers] + ["?"])
    names = voice[np.where((index >= 0) & (index < len(speakers)), index, len(speakers))]
    out = {}
    for name in sorted(set(names.tolist())):
        keep = (names == name) & (labels >= 0)
        if keep.any():
            out[name] = {"accuracy": float((pred[keep] == labels[keep]).mean()), "clips": int(keep.sum())}
    return out


def _split_source(split_dir: Path) -> str:
    try:
        spec = json.loads((split_dir / "meta.json").read_text()).get("spec", {})
    except (OSError, ValueError):
        return "?"
    return str(spec.get("source", "?"))
