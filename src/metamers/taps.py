"""Named layers of any ``nn.Module``: list them, capture them, stop the forward pass after the deepest one.

A *layer* is the tensor output of one call of one module, named by the module's path in ``model.named_modules()``
(``features.3``, ``_blocks.4``); the model's own output is ``output``.  A module called more than once in a forward
pass (a shared ``ReLU6``, say) has one layer per call, named ``path@0``, ``path@1``, ...

Everything works on unmodified models through forward hooks; ReLUs are found through ``__torch_function__``, so
``nn.ReLU`` (in place or not), ``nn.ReLU6`` and ``F.relu`` inside a module's ``forward`` are all seen.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from metamers._relu import LinearGradSwap, ReluRecorder

__all__ = ["Layer", "LayerError", "Taps", "capture", "frozen", "list_layers"]

OUTPUT = "output"


class LayerError(ValueError):
    """A layer name that the model does not have, or that is ambiguous."""


@dataclass(frozen=True)
class Layer:
    """One capturable layer of a model.

    Attributes
    ----------
    name : str
        The name to ask for it by (``features.3``, ``_blocks.4._swish@1``, ``output``).
    module : str
        The module's path in ``named_modules()`` (``""`` for the model itself).
    call : int
        Which call of that module in one forward pass (0 for modules called once).
    kind : str
        The module's class name.
    shape : tuple of int
        The output's shape without the batch dimension.
    relu : bool
        The output is the output of a ReLU-family operation (so the linear-gradient ReLU applies to it).
    feeds_relu : bool
        The output goes straight into a ReLU (the next layer after it is the rectified one).
    order : int
        Position in the order in which layers finish during the forward pass.
    relu_index : int
        Internal: which ReLU call within this module call produced the output (-1 when none did).
    """

    name: str
    module: str
    call: int
    kind: str
    shape: tuple[int, ...]
    relu: bool
    feeds_relu: bool
    order: int
    relu_index: int = -1

    @property
    def features(self) -> int:
        """Number of activations per stimulus."""
        n = 1
        for s in self.shape:
            n *= s
        return n


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with no parameter gradients for the duration, then restore it.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    >>> with frozen(net):
    ...     assert not net.training and not net[0].weight.requires_grad
    >>> net.training, net[0].weight.requires_grad
    (True, True)
    """
    training = {m: m.training for m in model.modules()}
    grads = {p: p.requires_grad for p in model.parameters()}
    model.eval()
    for p in grads:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for m, t in training.items():
            m.train(t)
        for p, g in grads.items():
            p.requires_grad_(g)


def _trace(model: nn.Module, example: torch.Tensor) -> list[Layer]:
    """Run one full forward pass and describe every tensor-valued module call, in start order."""
    paths = {m: p for p, m in model.named_modules()}
    recorder = ReluRecorder()
    counts: Counter[nn.Module] = Counter()
    stack: list[tuple[int, int]] = []
    raw: list[dict] = []
    handles = []

    def pre(module: nn.Module, args: tuple) -> None:
        call = counts[module]
        counts[module] += 1
        raw.append({"module": module, "call": call, "done": None})
        stack.append((len(raw) - 1, len(recorder.calls)))

    def post(module: nn.Module, args: tuple, output: object) -> None:
        idx, first_relu = stack.pop()
        entry = raw[idx]
        entry["done"] = len(recorder.calls)
        entry["output"] = output
        entry["relu_index"] = -1
        if isinstance(output, torch.Tensor):
            entry["version"] = output._version
            for j in range(len(recorder.calls) - 1, first_relu - 1, -1):
                if recorder.calls[j][1] is output:
                    entry["relu_index"] = j - first_relu
                    break
        entry["finish"] = _finish_counter[0]
        _finish_counter[0] += 1

    _finish_counter = [0]
    for m in paths:
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        with torch.no_grad(), recorder:
            model(example)
    finally:
        for h in handles:
            h.remove()

    layers = []
    for entry in raw:
        out = entry.get("output")
        if not isinstance(out, torch.Tensor) or out.dim() == 0:
            continue
        module, call = entry["module"], entry["call"]
        path = paths[module]
        name = OUTPUT if path == "" else path
        if counts[module] > 1:
            name = f"{name}@{call}"
        feeds = any(inp is out for inp, _ in recorder.calls[entry["done"] :])
        layers.append(
            Layer(
                name=name,
                module=path,
                call=call,
                kind=type(module).__name__,
                shape=tuple(out.shape[1:]),
                relu=entry["relu_index"] >= 0,
                feeds_relu=feeds,
                order=entry["finish"],
                relu_index=entry["relu_index"],
            )
        )
        # whether something later writes into this tensor in place (then a capture must copy it)
        object.__setattr__(layers[-1], "_mutated", out._version != entry["version"])
    return layers


def list_layers(model: nn.Module, example: torch.Tensor) -> list[Layer]:
    """List the layers of ``model`` that a metamer can be generated from, in the order their modules start.

    Parameters
    ----------
    model : nn.Module
        Any model; it is not modified (its mode is restored afterwards).
    example : torch.Tensor
        One input batch (a single item is enough) that the model accepts.

    Returns
    -------
    list of Layer
        One entry per tensor-valued module call, ``relu`` marking outputs taken after a ReLU.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten())
    >>> [(l.name, l.relu, l.feeds_relu) for l in list_layers(net, torch.zeros(1, 3, 8, 8))]
    [('output', False, False), ('0', False, True), ('1', True, False), ('2', False, False)]
    """
    with frozen(model):
        return _trace(model, example)


def _resolve(layers: list[Layer], names: Sequence[str]) -> list[Layer]:
    by_name = {lay.name: lay for lay in layers}
    calls: dict[str, list[Layer]] = {}
    for lay in layers:
        calls.setdefault(lay.module if lay.module else OUTPUT, []).append(lay)
    picked = []
    for name in names:
        if name in by_name:
            picked.append(by_name[name])
            continue
        base, _, k = name.partition("@")
        if base in calls and k == "" and len(calls[base]) > 1:
            options = ", ".join(lay.name for lay in calls[base])
            raise LayerError(
                f"module {base!r} runs {len(calls[base])} times in one forward pass, so the layer is ambiguous: "
                f"name one call ({options})."
            )
        if base in calls and k.isdigit() and int(k) < len(calls[base]):
            picked.append(calls[base][int(k)])
            continue
        close = difflib.get_close_matches(name, list(by_name), n=5, cutoff=0.5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise LayerError(
            f"the model has no layer {name!r}.{hint} `metamers layers MODEL` or list_layers() lists them all."
        )
    return picked


class _StopForward(Exception):
    """Raised from a hook once every requested layer has been captured."""


class Taps:
    """Capture named layers of an unmodified model in one forward pass that stops after the deepest of them.

    Parameters
    ----------
    model : nn.Module
        The model; its modules are not changed, only hooked during each call.
    layers : sequence of str
        Layer names as :func:`list_layers` gives them.
    linear_grad : str, optional
        One of ``layers``: if its output is taken after a ReLU, that ReLU passes gradients as the identity
        (forward values unchanged), as Feather et al. (2019) do at the metamer generation layer.
    truncate : bool
        Stop the forward pass once the deepest requested layer is captured (default).  With ``False`` the model
        runs to the end and its output is returned under ``"output"`` as well.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    >>> taps = Taps(net, ["1"], linear_grad="1")
    >>> acts = taps(torch.rand(2, 3, 8, 8))
    >>> acts["1"].shape, taps.linear_grad_applied
    (torch.Size([2, 4, 6, 6]), True)
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        *,
        linear_grad: str | None = None,
        truncate: bool = True,
    ) -> None:
        if isinstance(layers, str):
            layers = [layers]
        if not layers:
            raise LayerError("ask for at least one layer.")
        if linear_grad is not None and linear_grad not in layers:
            raise LayerError(f"linear_grad={linear_grad!r} must be one of the requested layers {list(layers)}.")
        self.model = model
        self.names = list(dict.fromkeys(layers))
        self.linear_grad = linear_grad
        self.truncate = truncate
        self._layers: list[Layer] | None = None
        self._picked: list[Layer] = []

    @property
    def layers(self) -> list[Layer]:
        """The requested layers, resolved (available after the first call)."""
        if self._layers is None:
            raise RuntimeError("the layers are resolved on the first call; call the Taps on an input first.")
        return self._picked

    @property
    def linear_grad_applied(self) -> bool:
        """Whether the linear-gradient ReLU is in effect (the ``linear_grad`` layer ends in a ReLU)."""
        return self.linear_grad is not None and self._by_name(self.linear_grad).relu

    def _by_name(self, name: str) -> Layer:
        for lay, n in zip(self._picked, self.names, strict=True):
            if n == name:
                return lay
        raise KeyError(name)

    def _setup(self, x: torch.Tensor) -> None:
        was_training = self.model.training
        self.model.eval()
        try:
            self._layers = _trace(self.model, x[:1])
        finally:
            self.model.train(was_training)
        self._picked = _resolve(self._layers, self.names)
        modules = dict(self.model.named_modules())
        wanted: dict[tuple[nn.Module, int], tuple[str, Layer]] = {}
        for name, lay in zip(self.names, self._picked, strict=True):
            wanted[(modules[lay.module], lay.call)] = (name, lay)
        last = max(self._picked, key=lambda lay: lay.order)
        swap_at = None
        if self.linear_grad is not None:
            lay = self._by_name(self.linear_grad)
            if lay.relu:
                swap_at = (modules[lay.module], lay.call, lay.relu_index)
        self._plan = (wanted, last, swap_at)

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model on ``x`` and return ``{layer name: activations}``."""
        if self._layers is None:
            self._setup(x)
        wanted, last, swap_at = self._plan

        counts: Counter[nn.Module] = Counter()
        out: dict[str, torch.Tensor] = {}
        active: list[LinearGradSwap] = []

        def pre(module: nn.Module, args: tuple) -> None:
            call = counts[module]
            counts[module] += 1
            if swap_at is not None and swap_at[0] is module and swap_at[1] == call:
                mode = LinearGradSwap(swap_at[2])
                mode.__enter__()
                active.append(mode)

        def post(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            call = counts[module] - 1
            if swap_at is not None and swap_at[0] is module and swap_at[1] == call and active:
                active.pop().__exit__(None, None, None)
            hit = wanted.get((module, call))
            if hit is None:
                return
            name, lay = hit
            must_copy = getattr(lay, "_mutated", False) and lay is not last
            out[name] = output.clone() if must_copy else output
            if self.truncate and lay is last:
                raise _StopForward

        handles = []
        for module in {m for m, _ in wanted} | ({swap_at[0]} if swap_at else set()):
            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        try:
            result = self.model(x)
            if not self.truncate and isinstance(result, torch.Tensor):
                out.setdefault(OUTPUT, result)
        except _StopForward:
            pass
        finally:
            while active:
                active.pop().__exit__(None, None, None)
            for h in handles:
                h.remove()
        missing = [n for n in self.names if n not in out]
        if missing:
            raise RuntimeError(f"layers {missing} did not run on this input; the model's path depends on its input.")
        return out


def capture(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` for input ``x``, in one truncated forward pass without gradients.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> {k: tuple(v.shape) for k, v in capture(net, torch.rand(5, 3), ["0", "1"]).items()}
    {'0': (5, 4), '1': (5, 4)}
    """
    with frozen(model), torch.no_grad():
        return Taps(model, layers)(x)
