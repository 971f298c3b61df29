"""`metamers synthesize`: metamers of photos, your own pictures or spoken words at layers of a zoo or your own model."""

from __future__ import annotations

import argparse
from pathlib import Path

from metamers._cli_checks import CLIError, names
from metamers._cli_checks import device as _device
from metamers._cli_checks import model_from_spec as _model_from_spec
from metamers._cli_checks import precision as _precision
from metamers._cli_checks import say_speed as _say_speed

__all__ = ["cmd_synthesize"]


def cmd_synthesize(args: argparse.Namespace) -> None:
    from metamers.runs.jobs import Job
    from metamers.runs.media import write_media, write_originals
    from metamers.settings import SynthesisSettings
    from metamers.stimuli import load_photos
    from metamers.synthesis import auto_chunk_size, synthesize

    zoo = _model_from_spec(
        args.model, args.input_shape, args.weights, kind=args.kind, mean=args.mean, std=args.std, labels=args.labels
    )
    if zoo.kind == "audio":
        return _synthesize_audio(zoo, args)
    layer = zoo.layer(args.layer)
    if args.images:
        from metamers.stimuli.files import find_stimulus_files, load_image_files

        found = find_stimulus_files(args.images)
        if found.kind != "image":
            raise CLIError(f"--images {args.images} holds sounds; give a folder or glob of PNG or JPEG images.")
        x, photos = load_image_files(found, zoo.input_shape[-1]), list(found.names)
    else:
        x, photos = load_photos(names(args.photos, "photos"), size=zoo.input_shape[-1])
    given = {"iterations": args.iterations, "lr": args.lr, "seed": args.seed, "stop_rho": args.stop_rho}
    if args.stop_label:
        given["stop_label"] = True
    if args.stop_rho is not None:
        given["stop_on"] = "8-bit"  # judged as the PNG this command writes
    changes = {k: v for k, v in given.items() if v is not None}
    settings = SynthesisSettings.preset(args.preset, **changes)
    out = Path(args.out)
    device, why = _device(args.device)
    precision, pwhy = _precision(args.precision)
    chunk = auto_chunk_size(device, len(photos))
    print(f"device {device} ({why}); batch {len(photos)} (every stimulus in one optimisation, {chunk} at a time "
          f"through the model); precision {precision} ({pwhy})")  # fmt: skip
    job = Job(zoo.name, zoo.kind, args.layer, layer, 0, tuple(photos), settings.iterations)  # a plan's layout
    result = synthesize(
        zoo.module,
        x.to(device),
        layer,
        settings,
        checkpoint=out / "checkpoints" / f"{job.stem}.pt",
        checkpoint_every=args.checkpoint_every,
        progress=None if not args.quiet else False,
        precision=precision,
    )
    _say_speed(result)
    result.extra.update(
        model=zoo.name,
        stimuli=list(photos),
        stage=args.layer,
        model_spec=zoo.provenance.get("spec"),
        weights_id=zoo.weights_id,
    )
    path = result.save(out / job.result)
    labels = zoo.predict(result.metamers)
    originals = zoo.predict(x)
    write_originals(zoo, x, photos, out)
    write_media(zoo, result, photos, args.layer, out)
    print(result.summary())
    for i, n in enumerate(photos):
        same = "same label" if labels[i] == originals[i] else "label differs"
        print(f"  {n}: {zoo.labels[int(originals[i])]} -> {zoo.labels[int(labels[i])]} ({same})")
    print(f"wrote {path} and PNGs under {out / 'media' / zoo.name}; validate with `metamers validate {out}`")


def _synthesize_audio(zoo, args: argparse.Namespace) -> None:
    from metamers.audio.speech import SpeechSourceMissing
    from metamers.runs.audio import audio_metamers

    if args.preset != "feather2019":
        raise CLIError("audio synthesis uses the feather2019_audio settings (pink noise at RMS 0.01, Adam).")
    stages, words = names(args.layer, "layer"), names(args.words, "words")
    try:
        results = audio_metamers(
            zoo,
            words,
            stages,
            args.out,
            source=args.speech,
            iterations=2000 if args.iterations is None else args.iterations,  # 0 is 0 iterations
            lr=0.001 if args.lr is None else args.lr,
            seed=0 if args.seed is None else args.seed,
            progress=None if not args.quiet else False,
            checkpoint_every=args.checkpoint_every,
            stop_rho=args.stop_rho,
            stop_label=args.stop_label,
        )
    except SpeechSourceMissing as e:
        raise CLIError(str(e)) from e
    for stage, r in results.items():
        labels = zoo.predict(r.metamers)
        heard = ", ".join(f"{w} -> {zoo.labels[int(labels[i])]}" for i, w in enumerate(words))
        print(
            f"{stage}: rho at the layer {', '.join(f'{float(v):.3f}' for v in r.layer_rho)}; the network hears {heard}"
        )
    print(
        f"wrote WAVs under {Path(args.out) / 'media'} and {Path(args.out) / 'figures'}; validate with "
        f"`metamers validate {args.out}`"
    )
