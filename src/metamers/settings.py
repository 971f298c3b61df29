"""Synthesis settings: the paper's defaults, the 2023 follow-up's choices by name, and validation of both."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass

__all__ = ["PRESETS", "SynthesisSettings"]

LOSSES = ("squared_error", "mse", "normalized")
OPTIMIZERS = ("adam", "l2_step", "lbfgs")
SCHEDULES = ("constant", "exp_decay", "step_halving")
INITS = ("white", "gaussian", "pink")
STOP_ON = ("float", "8-bit", "16-bit")


@dataclass(frozen=True)
class SynthesisSettings:
    """Everything that decides a metamer besides the model, the layer and the stimuli.

    The defaults are those of Feather et al. (2019): Adam at learning rate 0.001 for 15000 iterations on the squared
    error between activations, the learning rate decayed by 0.95 every 1000 iterations as in the authors' code,
    white-noise initialisation centred in the input range, hard bounds, the linear-gradient ReLU at the generation
    layer.

    Attributes
    ----------
    iterations : int
        Optimisation steps per metamer.
    lr : float
        Initial learning rate (for ``l2_step``, the step length in input units).
    optimizer : {"adam", "l2_step", "lbfgs"}
        ``adam`` (2019), a step of fixed length along the per-item normalised gradient (2023 follow-up), or
        L-BFGS per item with a backtracking line search, one evaluation per iteration (``lr`` is then the first
        step tried along each direction, 1 the quasi-Newton step).
    loss : {"squared_error", "mse", "normalized"}
        Per item: the sum of squared differences (2019), their mean, or ``||a - t|| / ||t||`` (2023).
    schedule : {"constant", "exp_decay", "step_halving"}
        Learning rate over iterations: fixed; ``lr * decay_rate ** (i / schedule_every)`` (2019 code, 0.95 per 1000);
        halved every ``schedule_every`` iterations (2023, every 3000).
    schedule_every : int, optional
        Interval of the schedule (default 1000 for ``exp_decay``, 3000 for ``step_halving``).
    decay_rate : float
        Factor per interval for ``exp_decay``.
    init : {"white", "gaussian", "pink"}
        Uniform white noise centred in ``bounds`` (images, 2019), Gaussian noise of mean 0.5 (images, 2023), or pink
        noise along the last axis (audio).
    init_scale : float, optional
        Width of the white noise as a fraction of the range (default 0.1), std of the Gaussian (0.05), or RMS of the
        pink noise (0.01).
    bounds : (float, float) or None
        Hard bounds on the input, enforced after every step; ``None`` for none.
    linear_grad_relu : bool
        Pass gradients through the generation layer's ReLU as the identity (paper section 3.1).
    stop_loss : float, optional
        An item stops once its loss is at or below this value.
    stop_rho : float, optional
        An item stops once the Spearman rho between its activations and its stimulus's at the generation layer is at
        or above this value (e.g. 0.99): ``iterations`` is then a cap.  Checked every ``check_every`` iterations.
    stop_label : bool
        With ``stop_rho`` (or ``stop_loss``): an item stops only once the model's top-1 output for it is also its
        stimulus's (a full forward pass at each check, for the items that reach the rho).
    stop_on : {"float", "8-bit", "16-bit"}
        What the fidelity test (``stop_rho``, ``stop_label``) judges: the metamer as optimised, or as a file will hold
        it, an 8-bit image (clamped to [0, 1], rounded to 1/255) or a 16-bit waveform (clamped to [-1, 1], rounded to
        1/32767). Validation judges the file, so a metamer that stops on its float values can still fail there.
    check_every : int
        Iterations between looks at the losses on the host (stopping, NaN, progress).
    record_every : int
        Iterations between entries of the loss history.
    seed : int
        Seed of the initial noise.
    """

    iterations: int = 15000
    lr: float = 0.001
    optimizer: str = "adam"
    loss: str = "squared_error"
    schedule: str = "exp_decay"
    schedule_every: int | None = None
    decay_rate: float = 0.95
    init: str = "white"
    init_scale: float | None = None
    bounds: tuple[float, float] | None = (0.0, 1.0)
    linear_grad_relu: bool = True
    stop_loss: float | None = None
    stop_rho: float | None = None
    stop_label: bool = False
    stop_on: str = "float"
    check_every: int = 100
    record_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for field, allowed in (
            ("loss", LOSSES),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("init", INITS),
            ("stop_on", STOP_ON),
        ):
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(f"{field}={value!r} is not one of {', '.join(allowed)}.")
        _whole(self, "iterations", 0)
        _whole(self, "seed", None)
        _whole(self, "check_every", 1)
        _whole(self, "record_every", 1)
        if self.schedule_every is not None:
            _whole(self, "schedule_every", 1)
        _number(self, "lr", positive=True)
        _number(self, "decay_rate", positive=True)
        if self.init_scale is not None:
            _number(self, "init_scale", positive=True)
        if self.stop_loss is not None:
            _number(self, "stop_loss", positive=False)
        if self.stop_rho is not None:
            _number(self, "stop_rho", positive=False)
            if not -1 < self.stop_rho <= 1:
                raise ValueError(f"stop_rho is a Spearman rho: between -1 and 1 (e.g. 0.99), got {self.stop_rho}.")
        for flag in ("linear_grad_relu", "stop_label"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be true or false, got {getattr(self, flag)!r}.")
        if self.stop_label and self.stop_rho is None and self.stop_loss is None:
            raise ValueError("stop_label adds a condition to stop_rho or stop_loss; set one of them too.")
        if self.bounds is not None:
            if isinstance(self.bounds, str | bytes) or len(self.bounds) != 2:
                raise TypeError(f"bounds must be (low, high) or None, got {self.bounds!r}.")
            lo, hi = self.bounds
            if not all(_real(v) and math.isfinite(v) for v in (lo, hi)) or not lo < hi:
                raise ValueError(f"bounds must be (low, high), finite numbers with low < high, got {self.bounds}.")
            object.__setattr__(self, "bounds", (float(lo), float(hi)))

    @property
    def interval(self) -> int:
        """The schedule's interval in iterations."""
        if self.schedule_every is not None:
            return int(self.schedule_every)
        return 3000 if self.schedule == "step_halving" else 1000

    def lr_at(self, iteration: int) -> float:
        """Learning rate at ``iteration`` (0-based).

        Examples
        --------
        >>> SynthesisSettings(lr=1.0, schedule="step_halving").lr_at(6000)
        0.25
        """
        if self.schedule == "exp_decay":
            return self.lr * self.decay_rate ** (iteration / self.interval)
        if self.schedule == "step_halving":
            return self.lr * 0.5 ** (iteration // self.interval)
        return self.lr

    def replace(self, **changes: object) -> SynthesisSettings:
        """A copy with some fields changed (unknown names are an error)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            names = ", ".join(f.name for f in dataclasses.fields(self))
            raise TypeError(f"unknown synthesis setting(s) {sorted(unknown)}; the settings are: {names}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        d = dataclasses.asdict(self)
        d["bounds"] = list(self.bounds) if self.bounds is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SynthesisSettings:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        if d.get("bounds") is not None:
            d["bounds"] = tuple(d["bounds"])
        return cls(**d)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), used in fingerprints."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def preset(cls, name: str, **changes: object) -> SynthesisSettings:
        """Settings by name, see :data:`PRESETS`.

        Examples
        --------
        >>> SynthesisSettings.preset("feather2023").optimizer
        'l2_step'
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
        return cls(**PRESETS[name]).replace(**changes)


def _real(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _kind(v: object) -> str:
    name = {"str": "string", "int": "whole number", "list": "list", "dict": "table"}.get(type(v).__name__)
    return f"{v!r} (a {name or type(v).__name__})"


def _whole(s: SynthesisSettings, name: str, least: int | None) -> None:
    """``s.name`` is an int (not a bool, a float or a string) of at least ``least``."""
    v = getattr(s, name)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {_kind(v)}.")
    if type(v) is not int:  # e.g. numpy.int64: stored as a plain int (JSON-able)
        object.__setattr__(s, name, v := int(v))
    if least is not None and v < least:
        raise ValueError(f"{name} must be {least} or more, got {v}.")


def _number(s: SynthesisSettings, name: str, positive: bool) -> None:
    """``s.name`` is a finite real number (int or float, not a string), positive when asked."""
    v = getattr(s, name)
    if not _real(v):
        raise TypeError(f"{name} must be a number, got {_kind(v)}.")
    if type(v) not in (int, float):  # e.g. numpy.float32: stored as a plain float (JSON-able)
        object.__setattr__(s, name, v := float(v))
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}.")
    if positive and not v > 0:
        raise ValueError(f"{name} must be positive, got {v}.")


PRESETS: dict[str, dict] = {
    # Feather et al. 2019, images: Adam 0.001, 15000 iterations, squared error, white noise in [0, 1].
    "feather2019": {},
    # Feather et al. 2019, audio: the same optimiser, pink-noise start at RMS 0.01; waveforms live in [-1, 1].
    "feather2019_audio": {"init": "pink", "bounds": (-1.0, 1.0)},
    # This project's plans and demo (images): the step rule that reached fidelity soonest in benchmarks/step_rules.py
    # (README "Stopping on fidelity"), each metamer stopping once rho >= 0.99 at the generation layer with its
    # stimulus's label, judged on the metamer as its 8-bit PNG will hold it; ``iterations`` is the cap.
    "fidelity": {
        "iterations": 3000,
        "optimizer": "lbfgs",
        "lr": 1.0,
        "schedule": "constant",
        "stop_rho": 0.99,
        "stop_label": True,
        "stop_on": "8-bit",
        "check_every": 25,
    },
    # Feather et al. 2023 (model_metamers_pytorch): normalised L2 loss, fixed-length normalised-gradient steps of
    # length 1 halved every 3000 iterations, 24000 iterations, Gaussian start (mean 0.5, std 0.05).
    "feather2023": {
        "iterations": 24000,
        "lr": 1.0,
        "optimizer": "l2_step",
        "loss": "normalized",
        "schedule": "step_halving",
        "init": "gaussian",
    },
    "feather2023_audio": {
        "iterations": 24000,
        "lr": 1.0,
        "optimizer": "l2_step",
        "loss": "normalized",
        "schedule": "step_halving",
        "init": "pink",
        "bounds": (-1.0, 1.0),
    },
}
