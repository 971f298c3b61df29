"""The batched metamer optimisation loop.

Many stimuli go through the model together; each item has its own loss, history and stopping.  Adam is elementwise
and the losses are summed, and the L-BFGS rule keeps a history and a line search per item, so item ``i``'s update
depends on item ``i`` alone: a batch of metamers equals the same metamers made one at a time.  The forward pass
stops at the generation layer, the host looks at the losses only every ``check_every`` iterations, and the whole
state can be checkpointed and resumed exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn

from metamers import noise
from metamers._checkpoint import LoopState, resume_state, save_checkpoint
from metamers._device import resolve_device
from metamers._fastpath import channels_last, folded_batchnorm, has_conv2d
from metamers._files import DamagedFile, atomic_path
from metamers._inputs import check_inputs, first_pass
from metamers._lbfgs import BatchLBFGS
from metamers._optim import L2Step, adam
from metamers._stopping import Fidelity, check, stimulus_labels
from metamers.settings import SynthesisSettings
from metamers.similarity import spearman
from metamers.taps import Taps, frozen

__all__ = ["CheckpointMismatch", "SynthesisResult", "auto_chunk_size", "item_losses", "synthesize"]


class CheckpointMismatch(RuntimeError):
    """A checkpoint file belongs to another synthesis (other settings, stimuli, layer or initial noise)."""


def item_losses(acts: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-item loss between activations and their target.

    Parameters
    ----------
    acts, target : torch.Tensor
        Same shape, batch first.
    kind : {"squared_error", "mse", "normalized"}
        Sum of squared differences, their mean, or ``||acts - target|| / ||target||``.

    Examples
    --------
    >>> item_losses(torch.ones(2, 3), torch.zeros(2, 3), "squared_error").tolist()
    [3.0, 3.0]
    """
    d = (acts - target).flatten(1)
    if kind == "squared_error":
        return d.pow(2).sum(1)
    if kind == "mse":
        return d.pow(2).mean(1)
    if kind == "normalized":
        return d.norm(dim=1) / target.flatten(1).norm(dim=1).clamp_min(1e-12)
    raise ValueError(f"unknown loss {kind!r}.")


CPU_CHUNK = 2


def auto_chunk_size(device: torch.device | str, n: int) -> int:
    """How many items go through the model together: the whole batch on a GPU, two at a time on a CPU.

    On a CPU the batch is still one optimisation (one Adam step for all items), but the forward and backward passes run
    on a few items at a time: their activations stay in cache. Measured by ``benchmarks/chunk_size.py`` (each size in
    fresh processes) on a 2-core AMD EPYC with EfficientNet-Lite0 at 224x224, 8 pictures and the default fast paths:
    two at a time was the fastest at all three stages (6.3 / 9.1 / 16.6 ms per item-iteration at an early / middle /
    late stage; one at a time 6.7 / 12.3 / 22.2; four and eight up to 1.8x and 3.2x slower at the early stage, see
    ``benchmarks/results/chunk_size.md``).

    Examples
    --------
    >>> auto_chunk_size("cpu", 8), auto_chunk_size("cuda", 8)
    (2, 8)
    """
    return min(n, CPU_CHUNK) if torch.device(device).type == "cpu" else n


@dataclass
class SynthesisResult:
    """Metamers and everything needed to reproduce and judge them.

    Attributes
    ----------
    metamers : torch.Tensor
        The synthesized inputs, same shape as the stimuli (CPU).
    stimuli : torch.Tensor
        The natural stimuli they were matched to.
    initial : torch.Tensor
        The initial noise.
    targets : torch.Tensor
        The stimuli's activations at ``layer``.
    layer : str
        The generation layer.
    settings : SynthesisSettings
        The settings used (seed included).
    losses : torch.Tensor
        Loss history, shape ``(records, items)``; row ``k`` is iteration ``loss_iterations[k]``.
    loss_iterations : torch.Tensor
        The iteration of each history row.
    final_loss : torch.Tensor
        Each item's loss at the end (at its stopping iteration for stopped items).
    layer_rho : torch.Tensor
        Spearman rho between each metamer's and its stimulus's activations at ``layer``.
    stop_iteration : list of int
        Iterations each item ran.
    stop_reason : list of str
        Why each item stopped (``"completed"``, ``"reached stop_loss"``, or a message about a non-finite loss).
    linear_grad_applied : bool
        Whether the generation layer ended in a ReLU that got the linear gradient.
    elapsed_s : float
        Optimisation wall time, summed over resumed sessions.
    device : str
        Where the optimisation ran.
    """

    metamers: torch.Tensor
    stimuli: torch.Tensor
    initial: torch.Tensor
    targets: torch.Tensor
    layer: str
    settings: SynthesisSettings
    losses: torch.Tensor
    loss_iterations: torch.Tensor
    final_loss: torch.Tensor
    layer_rho: torch.Tensor
    stop_iteration: list[int]
    stop_reason: list[str]
    linear_grad_applied: bool
    elapsed_s: float
    device: str
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.metamers.shape[0]

    def summary(self) -> str:
        """One line per item: final loss, rho at the layer, stop reason."""
        cap = " at most" if self.settings.stop_rho is not None or self.settings.stop_loss is not None else ""
        lines = [f"layer {self.layer}: {len(self)} metamers,{cap} {self.settings.iterations} iterations"]
        for i in range(len(self)):
            lines.append(
                f"  [{i}] loss {float(self.final_loss[i]):.4g}  rho {float(self.layer_rho[i]):.4f}  "
                f"{self.stop_reason[i]} (iteration {self.stop_iteration[i]})"
            )
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result to one ``.safetensors`` file (tensors at full precision, the rest as JSON metadata)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            k: getattr(self, k).contiguous()
            for k in (
                "metamers",
                "stimuli",
                "initial",
                "targets",
                "losses",
                "loss_iterations",
                "final_loss",
                "layer_rho",
            )
        }
        meta = {
            "layer": self.layer,
            "settings": self.settings.to_dict(),
            "stop_iteration": self.stop_iteration,
            "stop_reason": self.stop_reason,
            "linear_grad_applied": self.linear_grad_applied,
            "elapsed_s": self.elapsed_s,
            "device": self.device,
            "extra": self.extra,
            "versions": {"torch": torch.__version__, "metamers": metamers_version()},
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"metamers": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SynthesisResult:
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            When there is no such file.
        DamagedFile
            When the file exists but cannot be read (truncated, or not a result of ours); the message names it.
        """
        from safetensors import safe_open

        if not Path(path).is_file():
            raise FileNotFoundError(f"no synthesis result {path}.")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads(f.metadata()["metamers"])
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors' errors have no common class; any failure here is a damaged file
            raise DamagedFile(path, e, "`metamers run` sets it aside and redoes it; else synthesize it again.") from e
        return cls(
            **tensors,
            layer=meta["layer"],
            settings=SynthesisSettings.from_dict(meta["settings"]),
            stop_iteration=meta["stop_iteration"],
            stop_reason=meta["stop_reason"],
            linear_grad_applied=meta["linear_grad_applied"],
            elapsed_s=meta["elapsed_s"],
            device=meta["device"],
            extra=meta.get("extra", {}),
        )


def metamers_version() -> str:
    try:
        from importlib.metadata import version

        return version("metamers")
    except Exception:  # pragma: no cover - running from a source tree
        return "unknown"


def _initial_noise(settings: SynthesisSettings, like: torch.Tensor) -> torch.Tensor:
    shape, kw = tuple(like.shape), {"seed": settings.seed, "dtype": like.dtype}
    if settings.init == "pink":
        x = noise.pink_noise(shape, rms_level=settings.init_scale or 0.01, **kw)
    elif settings.init == "gaussian":
        x = noise.gaussian_noise(shape, mean=_centre(settings), std=settings.init_scale or 0.05, **kw)
    else:
        x = noise.white_noise(shape, bounds=settings.bounds or (0.0, 1.0), spread=settings.init_scale or 0.1, **kw)
    if settings.bounds is not None:
        x = x.clamp(*settings.bounds)
    return x


def _centre(settings: SynthesisSettings) -> float:
    return 0.5 if settings.bounds is None else sum(settings.bounds) / 2


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            t = p.detach().cpu().contiguous()
            h.update(str((tuple(t.shape), str(t.dtype))).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(str(p).encode())
    return h.hexdigest()


def synthesize(
    model: nn.Module,
    stimuli: torch.Tensor,
    layer: str,
    settings: SynthesisSettings | None = None,
    *,
    init: torch.Tensor | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    progress: bool | None = None,
    device: str | torch.device | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    chunk_size: int | None = None,
    fold_batchnorm: bool = True,
    memory_format: str = "auto",
    precision: str = "float32",
    **changes: object,
) -> SynthesisResult:
    """Synthesize one metamer per stimulus, matching the activations of ``layer``.

    Parameters
    ----------
    model : nn.Module
        Any model taking the stimuli as they are (preprocessing inside the model, so gradients reach the raw input).
        It is used in eval mode with frozen parameters and restored afterwards.
    stimuli : torch.Tensor
        Natural stimuli, batch first, inside ``settings.bounds``.
    layer : str
        The generation layer, a name from :func:`metamers.list_layers`.
    settings : SynthesisSettings, optional
        Defaults to the paper's (:class:`SynthesisSettings`).  Keyword arguments override single fields, e.g.
        ``iterations=2000, lr=0.01``.
    init : torch.Tensor, optional
        Initial inputs instead of the seeded noise.
    checkpoint : path, optional
        File for the optimisation state, written every ``checkpoint_every`` iterations and at the end.  If it exists
        and belongs to the same synthesis, the synthesis resumes from it and ends exactly as an uninterrupted one.
    progress : bool, optional
        Show a progress bar; by default only when standard error is a terminal.
    device : str or torch.device, optional
        Where to optimise; the model is moved there.  Default: where the stimuli are.
    callback : callable, optional
        Called as ``callback(iteration, metamers)`` after every step (for monitoring; keep it cheap).
    chunk_size : int, optional
        Items per forward/backward pass; the result is the same whatever it is (items are independent).  Default:
        :func:`auto_chunk_size` (two on a CPU, the whole batch on a GPU).
    fold_batchnorm : bool
        During the optimisation, fold eval-mode batch norms into the convolutions that feed them (the same function,
        one memory pass fewer each way; pairs are found and checked on a probe pass, and the model is restored).
    memory_format : {"auto", "channels_last", "contiguous"}
        Memory layout of the model's 4-d weights and of image metamers during the optimisation.  ``auto``:
        channels-last when the model has 2-d convolutions (faster with oneDNN and cuDNN), else unchanged.
    precision : {"float32", "bfloat16", "float16"}
        Arithmetic of the model's forward pass (autocast; the metamers, the loss and Adam stay in float32).  Lower
        precision is faster on GPUs with tensor cores and costs some fidelity (see ``benchmarks/``); on a CPU
        bfloat16 was measured no faster, so float32 is the default.

    What was used is recorded in ``result.extra["speed"]``.

    Returns
    -------
    SynthesisResult

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))
    >>> images = torch.rand(2, 3, 16, 16)
    >>> result = synthesize(net, images, "1", iterations=300, lr=0.01)
    >>> bool((result.layer_rho > 0.9).all())
    True
    """
    settings = (settings or SynthesisSettings()).replace(**changes) if changes else settings or SynthesisSettings()
    check_inputs(model, stimuli, settings, checkpoint_every)
    device = resolve_device(device) if device is not None else stimuli.device
    param = next(model.parameters(), None)
    if param is not None and param.device != device:
        model.to(device)
    stimuli_cpu = stimuli.detach().cpu()
    x0 = _initial_noise(settings, stimuli_cpu) if init is None else init.detach().cpu().to(stimuli.dtype)
    if x0.shape != stimuli.shape:
        raise ValueError(f"init has shape {tuple(x0.shape)}, the stimuli {tuple(stimuli.shape)}.")
    fingerprint = _digest(settings.to_json(), layer, stimuli_cpu, x0)
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}.")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}.")

    with frozen(model):
        taps = Taps(model, [layer], linear_grad=layer if settings.linear_grad_relu else None)
        with torch.no_grad():
            target = first_pass(lambda x: taps(x)[layer], stimuli.to(device)).detach().clone()
        last = memory_format == "channels_last" or (memory_format == "auto" and has_conv2d(model))
        speed = {"batchnorm_folded": 0, "memory_format": "channels_last" if last else "contiguous",
                 "precision": precision}  # fmt: skip

        @contextmanager
        def faster(x: torch.Tensor) -> Iterator[None]:
            with ExitStack() as stack:
                if last:
                    stack.enter_context(channels_last(model))
                if fold_batchnorm:
                    modules = dict(model.named_modules())
                    keep = {modules[lay.module] for lay in taps.layers}
                    run = partial(_forward, taps, layer, "float32", device.type)  # checked at full precision
                    probe = x.detach()[:1]
                    speed["batchnorm_folded"] = stack.enter_context(folded_batchnorm(model, run, probe, keep))
                yield

        n_chunk = auto_chunk_size(device, len(stimuli)) if chunk_size is None else max(1, int(chunk_size))
        fidelity = None
        if settings.stop_rho is not None or settings.stop_label:
            labels = stimulus_labels(model, stimuli.to(device), n_chunk) if settings.stop_label else None
            acts = partial(_forward, taps, layer, precision, device.type)
            classify = model if settings.stop_label else None
            fidelity = Fidelity(target, acts, classify, labels, n_chunk, settings.stop_on)
        result = _optimise(
            taps, target, stimuli_cpu, x0, layer, settings, device, fingerprint,
            checkpoint, checkpoint_every, progress, callback, n_chunk, faster, last, precision, fidelity,
        )  # fmt: skip
        result.extra["speed"] = speed
        return result


MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _forward(taps: Taps, layer: str, precision: str, device_type: str, x: torch.Tensor) -> torch.Tensor:
    """The generation layer's activations for ``x``, in float32 whatever the arithmetic inside."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return taps(x)[layer]
    with torch.autocast(device_type, dtype=dtype):
        acts = taps(x)[layer]
    return acts.float()


def _optimise(
    taps: Taps,
    target: torch.Tensor,
    stimuli: torch.Tensor,
    x0: torch.Tensor,
    layer: str,
    s: SynthesisSettings,
    device: torch.device,
    fingerprint: str,
    checkpoint: str | os.PathLike | None,
    checkpoint_every: int,
    progress: bool | None,
    callback: Callable[[int, torch.Tensor], None] | None,
    chunk: int,
    faster: Callable[[torch.Tensor], AbstractContextManager],
    last: bool,
    precision: str,
    fidelity: Fidelity | None,
) -> SynthesisResult:
    n = x0.shape[0]
    x = x0.clone().to(device)
    if last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    opt: torch.optim.Optimizer
    if s.optimizer == "lbfgs":
        opt = BatchLBFGS([x], lr=s.lr, bounds=s.bounds)
    else:
        opt = adam([x], s.lr) if s.optimizer == "adam" else L2Step([x], lr=s.lr)
    st = LoopState.fresh(x, s.iterations)

    ckpt = Path(checkpoint) if checkpoint is not None else None
    state = resume_state(ckpt)
    if state is not None:
        if state["fingerprint"] != fingerprint:
            raise CheckpointMismatch(
                f"checkpoint {ckpt} was written by a different synthesis (settings, layer, stimuli or initial noise "
                "differ); delete it or pass another checkpoint path."
            )
        st = LoopState.from_checkpoint(state, x, device)
        opt.load_state_dict(state["optimizer"])
    start, elapsed = st.iteration, st.elapsed_s
    # the loop changes these in place (``check`` marks stopped items), so the state saved is always the loop's
    active, stop_iteration, stop_reason = st.active, st.stop_iteration, st.stop_reason
    history, record_its = st.history, st.record_its

    def save(iteration: int) -> None:
        if ckpt is None:
            return
        st.iteration = iteration
        save_checkpoint(ckpt, st.to_checkpoint(fingerprint, opt.state_dict(), elapsed + (time.perf_counter() - t0)))

    show = sys.stderr.isatty() if progress is None else progress
    bar = _progress_bar(s.iterations, start, layer, show)
    t0 = time.perf_counter()
    it = start
    finished = not bool(active.any())
    all_active = bool(active.all())
    live = torch.nonzero(active).flatten()
    losses: torch.Tensor | None = None  # the last losses; those of items that just stopped are recomputed once
    stale: torch.Tensor | None = None
    try:
        with faster(x):
            while it < s.iterations and not finished:
                for group in opt.param_groups:
                    group["lr"] = s.lr_at(it)
                # items are independent: the same gradients whatever the chunk (a few at a time is cache-friendly
                # on a CPU)
                if all_active:  # known on the host: no masking, no synchronisation
                    grad = torch.empty_like(x)
                    losses = torch.empty(n, dtype=x.dtype, device=device)
                    for a in range(0, n, chunk):
                        xa = x.detach()[a : a + chunk].requires_grad_(True)
                        la = item_losses(
                            _forward(taps, layer, precision, device.type, xa), target[a : a + chunk], s.loss
                        )
                        (grad[a : a + chunk],) = torch.autograd.grad(la.sum(), xa)
                        losses[a : a + chunk] = la.detach()
                else:  # only the items still running go through the model; the stopped ones keep their loss
                    grad = torch.zeros_like(x)
                    if losses is None:  # resumed with items stopped: their losses once, where they stay
                        losses = torch.zeros(n, dtype=x.dtype, device=device)
                        stale = torch.nonzero(~active).flatten()
                    losses = losses.clone()
                    if stale is not None:  # the items that stopped at the last check, one at a time (the same
                        with torch.no_grad():  # arithmetic whether resumed or not)
                            for i in stale.tolist():
                                fixed = _forward(taps, layer, precision, device.type, x.detach()[i : i + 1])
                                losses[i] = item_losses(fixed, target[i : i + 1], s.loss)[0]
                        stale = None
                    for a in range(0, len(live), chunk):
                        ids = live[a : a + chunk]
                        xa = x.detach().index_select(0, ids).requires_grad_(True)
                        la = item_losses(
                            _forward(taps, layer, precision, device.type, xa), target.index_select(0, ids), s.loss
                        )
                        (ga,) = torch.autograd.grad(la.sum(), xa)
                        grad.index_copy_(0, ids, ga)
                        losses.index_copy_(0, ids, la.detach())
                x.grad = grad
                if isinstance(opt, BatchLBFGS):  # it needs the losses, and moves only the running items
                    opt.step(losses, None if all_active else active)
                else:
                    opt.step()
                x.grad = None
                if s.bounds is not None:
                    with torch.no_grad():
                        x.clamp_(*s.bounds)
                if it % s.record_every == 0:
                    history.append(losses.detach())
                    record_its.append(it)
                it += 1
                if callback is not None:
                    callback(it, x)
                if it % s.check_every == 0 or it == s.iterations:
                    was = active.clone()
                    seen = check(losses, active, x, st.snapshot, st.snapshot_it, opt, it, s,
                                 stop_iteration, stop_reason, fidelity)  # fmt: skip
                    st.snapshot, st.snapshot_it = x.detach().clone(), it
                    finished = not bool(active.any())
                    all_active = bool(active.all())
                    live = torch.nonzero(active).flatten()
                    stale = torch.nonzero(was & ~active).flatten()
                    bar.update(it - bar.n)
                    bar.set_postfix_str(f"median loss {float(seen.nanmedian()):.4g}")
                if ckpt is not None and it % checkpoint_every == 0:
                    save(it)
    finally:
        bar.close()
    elapsed += time.perf_counter() - t0
    t0 = time.perf_counter()
    save(max(it, start))

    with torch.no_grad():
        if isinstance(opt, BatchLBFGS):  # items still running at the cap end on their last accepted point
            x.copy_(torch.where(active.view((n,) + (1,) * (x.dim() - 1)), opt.best(), x))
        final_acts = taps(x.detach())[layer]
        final = item_losses(final_acts, target, s.loss).double().cpu()
    return SynthesisResult(
        metamers=x.detach().cpu().contiguous(),
        stimuli=stimuli,
        initial=x0,
        targets=target.cpu(),
        layer=layer,
        settings=s,
        losses=torch.stack(history).double().cpu() if history else torch.zeros(0, len(x0), dtype=torch.float64),
        loss_iterations=torch.tensor(record_its, dtype=torch.int64),
        final_loss=final,
        layer_rho=spearman(final_acts.cpu(), target.cpu()),
        stop_iteration=stop_iteration,
        stop_reason=stop_reason,
        linear_grad_applied=taps.linear_grad_applied,
        elapsed_s=elapsed,
        device=str(device),
    )


def _progress_bar(total: int, initial: int, layer: str, show: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"metamers @ {layer}", disable=not show, unit="it", leave=False)
