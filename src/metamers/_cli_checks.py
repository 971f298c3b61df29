"""The command line's checks and helpers: every argument checked before any work, and user errors said in one line.

:func:`check_args` looks at the parsed arguments of the non-experiment subcommands (numbers in range, a device
that exists here, an ``--out`` that is not a file); :func:`error_line` turns a user error into the one line
``metamers: error: ...`` prints.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
from pathlib import Path

__all__: list[str] = []


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that are a user's mistake, not a bug: one line and exit status 2, no traceback."""
    from metamers.runs.lock import DirectoryBusy
    from metamers.runs.rundir import RunError
    from metamers.synthesis import CheckpointMismatch

    return (CLIError, CheckpointMismatch, RunError, DirectoryBusy, ValueError, KeyError, TypeError, OSError,
            sqlite3.DatabaseError)  # fmt: skip


def error_line(e: BaseException) -> str:
    """The one line a user error prints: its message (an OSError's file and reason), newlines folded."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        text = f"{e.strerror}: {e.filename}"
        if isinstance(e, PermissionError):
            text += " (make it writable by this user, or use another directory)"
    else:
        text = str(e).strip().strip('"') or type(e).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _positive_number(value: float, flag: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise CLIError(f"{flag} {value:g}: give a finite number above 0.")


def check_args(args: argparse.Namespace) -> None:
    """Refuse arguments no command can use, before any work; experiment subcommands check their own."""
    if args.command == "experiment":
        return
    get = vars(args).get
    for flag, least in (("iterations", 0), ("checkpoint_every", 1), ("images", 1), ("words", 1), ("workers", 1)):
        value = get(flag)
        if isinstance(value, int) and not isinstance(value, bool) and value < least:
            raise CLIError(f"--{flag.replace('_', '-')} {value}: give {least} or more.")
    if get("pairs") is not None:
        from metamers.validation import MIN_PAIRS

        if args.pairs < MIN_PAIRS:
            raise CLIError(f"--pairs {args.pairs}: a null needs at least {MIN_PAIRS} pairs (the paper used 1000000).")
    if get("lr") is not None:
        _positive_number(args.lr, "--lr")
    if get("percentile") is not None and not 0 < args.percentile <= 100:
        raise CLIError(f"--percentile {args.percentile:g}: give a number in (0, 100] (100: the null's maximum).")
    if get("device"):
        device(args.device)
    out = get("out")
    if isinstance(out, str) and Path(out).exists() and not Path(out).is_dir():
        raise CLIError(f"--out {out} is a file; give a directory (it is created if missing).")
    for flag in ("photos", "layer", "layers", "recognizers"):
        value = get(flag)
        if isinstance(value, str) and not [v for v in value.split(",") if v.strip()]:
            raise CLIError(f"--{flag} is empty; give comma-separated names.")


def names(value: str, flag: str) -> list[str]:
    """A comma-separated list; empty is an error naming the flag."""
    out = [v.strip() for v in value.split(",") if v.strip()]
    if not out:
        raise CLIError(f"--{flag} is empty; give comma-separated names.")
    return out


def device(asked: str | None) -> tuple[str, str]:
    """The device for ``--device`` (a GPU when present), checked to exist here, and why."""
    from metamers._device import resolve_device

    try:
        chosen = str(resolve_device(asked))
    except ValueError as e:
        raise CLIError(f"--device {e}") from e
    if asked:
        return chosen, "asked for"
    return chosen, "a GPU is present" if chosen.startswith("cuda") else "no GPU found"


def precision(asked: str) -> tuple[str, str]:
    """The forward pass's arithmetic for ``--precision`` and why."""
    if asked != "auto":
        return asked, "asked for"
    return "float32", "full fidelity; lower precision is measured in benchmarks/results/synthesis_options.md"


def say_speed(result) -> None:
    """Print a synthesis's speed and fast paths."""
    sp = result.extra["speed"]
    its = sum(result.stop_iteration) / max(result.elapsed_s, 1e-9)
    folded = sp["batchnorm_folded"]
    print(f"speed: {its:.1f} metamer-iterations/s; {sp['memory_format']} memory; "
          f"batch norm folded into {folded} convolution{'s' if folded != 1 else ''}")  # fmt: skip


def _floats(value: str | None, flag: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise CLIError(f"{flag} {value!r}: give comma-separated numbers, e.g. 0.485,0.456,0.406.") from None


def is_user_model(spec: str) -> bool:
    """Whether ``spec`` names a user's model (``module:callable``, ``file.py:callable``, a TorchScript file)."""
    from metamers.models.user import TORCHSCRIPT_SUFFIXES

    return (":" in spec and not spec.endswith(":cochleagram")) or Path(spec).suffix in TORCHSCRIPT_SUFFIXES


def model_from_spec(
    spec: str,
    input_shape: str | None,
    weights: str | None = None,
    *,
    kind: str = "image",
    mean: str | None = None,
    std: str | None = None,
    labels: str | None = None,
):
    """A zoo name, or a user's model: ``package.module:callable`` or ``file.py:callable`` (called with no arguments;
    an ``nn.Module`` or a :class:`~metamers.models.ZooModel`), or a TorchScript file."""
    from metamers.models import load
    from metamers.models.user import UserModelError, UserModelSpec, build_user_model, parse_shape

    if is_user_model(spec):
        try:
            where, _, attr = spec.rpartition(":")
            name = Path(where).stem if where.endswith(".py") else (attr if where else Path(spec).stem)
            try:
                shape = parse_shape(input_shape) if input_shape else ((3, 224, 224) if kind == "image" else (40000,))
            except UserModelError:
                raise CLIError(
                    f"--input-shape {input_shape!r}: give positive whole numbers, channels first, e.g. 3,224,224."
                ) from None
            user = UserModelSpec(
                name=name,
                module=str(Path(where).resolve()) + ":" + attr if where.endswith(".py") else spec,
                weights=str(Path(weights).resolve()) if weights else None,
                kind=kind,
                input_shape=shape,
                mean=_floats(mean, "--mean"),
                std=_floats(std, "--std"),
                labels=labels,
            )
            zoo = build_user_model(user)
        except UserModelError as e:
            raise CLIError(str(e).replace("Set input_shape", "Give --input-shape")) from None
        if zoo.provenance.get("source") == "user":  # built from the spec (not a ready ZooModel the callable made)
            zoo.provenance["spec"] = user.to_dict()
        return zoo
    try:
        return load(spec, weights=weights)
    except (KeyError, RuntimeError, FileNotFoundError) as e:
        raise CLIError(str(e).strip('"')) from e


def layers_of(zoo) -> list:
    """The model's layers, traced on one example input; a model that cannot take it is a CLIError."""
    from metamers.taps import list_layers

    try:
        return list_layers(zoo.module, zoo.example())
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CLIError(
            f"{zoo.name} cannot take an input of shape {tuple(zoo.input_shape)}: {first}; give the shape it takes "
            "with --input-shape (one input, channels first, e.g. 3,224,224)."
        ) from e
