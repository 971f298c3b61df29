"""`metamers ...`: the command line.  It parses arguments and calls the library; nothing else lives here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from metamers._cli_checks import CLIError, check_args, error_line, names, user_errors
from metamers._cli_checks import device as _device
from metamers._cli_checks import model_from_spec as _model_from_spec
from metamers._cli_checks import precision as _precision
from metamers._cli_synthesize import cmd_synthesize as _cmd_synthesize

__all__ = ["main"]


def _cmd_layers(args: argparse.Namespace) -> None:
    from metamers._cli_checks import layers_of

    zoo = _model_from_spec(args.model, args.input_shape, args.weights)
    stage_of = {v: k for k, v in zoo.stages.items()}
    layers = layers_of(zoo)
    if args.stages:
        layers = [lay for lay in layers if lay.name in stage_of]
    print(f"{'layer':44s} {'type':26s} {'shape':18s} {'features':>9s}  relu   stage")
    for lay in layers:
        relu = "after" if lay.relu else ("next" if lay.feeds_relu else "")
        shape = "x".join(str(s) for s in lay.shape)
        stage = stage_of.get(lay.name, "")
        print(f"{lay.name:44s} {lay.kind[:26]:26s} {shape:18s} {lay.features:9d}  {relu:6s} {stage}")
    print(
        "\nrelu: 'after' = the output is taken after a ReLU (synthesis uses the linear-gradient ReLU there); "
        "'next' = the output goes straight into a ReLU."
    )


def _cmd_models(args: argparse.Namespace) -> None:
    from metamers.models import available

    for name, ok, why, desc in available():
        print(f"{'yes' if ok else 'no ':4s} {name:28s} {desc}" + ("" if ok else f"  [{why}]"))


def _cmd_validate(args: argparse.Namespace) -> None:
    from metamers.report.tables import format_table
    from metamers.runs import validate_dir
    from metamers.validation import AcceptanceRule

    rule = AcceptanceRule(same_label=not args.ignore_label, null_percentile=args.percentile)
    out = validate_dir(args.directory, n_pairs=args.pairs, rule=rule, source=args.source, seed=args.seed)
    print(format_table(out["table"]))
    rejected = [m for m in out["metamers"] if not m["accepted"]]
    for m in rejected:
        print(f"rejected: {m['model']} {m['layer']} {m['stimulus']}: {m['reason']}")
    catalog = Path(args.directory) / "catalog.sqlite"
    what = "as written (8-bit PNG, 16-bit WAV)" if out["source"] == "png" else "at full precision"
    print(f"\nvalidated the metamers {what}; table: {out['csv']}; catalog: {catalog}")
    for f in out["figures"]:
        print(f"figure: {f}")


def _cmd_transfer(args: argparse.Namespace) -> None:
    from metamers.runs import transfer_dir

    recognizers, spaces = names(args.recognizers, "recognizers"), names(args.spaces, "spaces")
    out = transfer_dir(args.directory, recognizers, source=args.source, spaces=spaces)
    print(f"{'generator':20s} {'layer':16s} {'recognizer':26s} {'space':8s} {'n':>3s} {'recognized':>10s} {'sem':>6s} "
          f"{'natural':>7s}")  # fmt: skip
    for c in out["cells"]:
        own = " (own)" if c.own else ""
        print(f"{c.generator[:20]:20s} {c.layer[:16]:16s} {(c.recognizer + own)[:26]:26s} {c.label_space:8s} {c.n:3d} "
              f"{c.proportion:10.3f} {c.sem:6.3f} {c.natural_accuracy:7.3f}")  # fmt: skip
    print(f"\ntransfer of the {args.source} metamers; table: {out['csv']}")
    for f in out["figures"]:
        print(f"figure: {f}")


def _cmd_relu_compare(args: argparse.Namespace) -> None:
    import csv

    from metamers.relu_comparison import relu_comparison
    from metamers.report.figures import relu_comparison_figure
    from metamers.stimuli import load_photos

    zoo = _model_from_spec(args.model, None)
    layers = [zoo.layer(n) for n in names(args.layers, "layers")]
    x, _ = load_photos(names(args.photos, "photos"), size=zoo.input_shape[-1])
    res = relu_comparison(zoo.module, x, layers, iterations=args.iterations, lr=args.lr, seed=args.seed)
    out = Path(args.out)
    fig = relu_comparison_figure(res, out / "figures" / f"relu_comparison_{zoo.name}.png",
                                 f"{zoo.name}: {args.iterations} iterations, lr {args.lr:g}")  # fmt: skip
    with open(out / f"relu_comparison_{zoo.name}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer", "relu_gradient", "item", "spearman_rho"])
        for kind, per_layer in res.items():
            for lay, vals in per_layer.items():
                w.writerows([lay, kind, i, f"{v:.6f}"] for i, v in enumerate(vals))
    print(f"{'layer':24s} {'standard':>9s} {'linear':>9s}   (median Spearman rho at the layer)")
    for lay in layers:
        med = {k: sorted(res[k][lay])[len(res[k][lay]) // 2] for k in res}
        print(f"{lay:24s} {med['standard']:9.4f} {med['linear']:9.4f}")
    print(f"figure: {fig}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from metamers.audio.speech import SpeechSourceMissing
    from metamers.demo import format_summary, run_demo
    from metamers.stimuli.photos import PhotoSourceMissing

    try:
        summary = run_demo(
            out=args.out,
            iterations=args.iterations,
            images=args.images,
            words=args.words,
            pairs=args.pairs,
            audio=not args.no_audio,
            progress=None if not args.quiet else False,
        )
    except (SpeechSourceMissing, PhotoSourceMissing) as e:
        raise CLIError(str(e)) from None
    print(format_summary(summary))
    print(f"the demo's run directory: {Path(args.out).resolve()} (`metamers status {args.out}`)")


def _cmd_run(args: argparse.Namespace) -> None:
    from metamers.runs.plan import PLAN_REFERENCE, PlanError
    from metamers.runs.run import RunError, run_plan

    if args.example:
        print(PLAN_REFERENCE, end="")
        return
    if not args.plan:
        raise CLIError("give a plan file (`metamers run PLAN --out DIR`) or a run directory to resume.")
    target = Path(args.plan)
    out = args.out
    if target.is_dir():
        out = out or str(target)
        if Path(out).resolve() != target.resolve():
            raise CLIError(f"{target} is a run directory; resume it with `metamers run {target}` (no --out).")
    elif out is None:
        raise CLIError("give --out DIR, the run directory (rerun the same command to resume).")
    if args.executor != "ray":
        device, why = _device(args.device)
        precision, pwhy = _precision("auto")
        print(f"device {device} ({why}); precision {precision} ({pwhy})")
    try:
        summary = run_plan(
            target,
            out,
            progress=None if not args.quiet else False,
            device=args.device,
            executor=args.executor,
            address=args.address,
            workers=args.workers,
        )
    except (PlanError, RunError) as e:
        raise CLIError(str(e)) from e
    print(
        f"{summary['accepted']} of {summary['metamers']} metamers accepted; synthesis jobs: "
        f"{summary['jobs']['done']} done, {summary['jobs']['failed']} failed ({summary['seconds'] / 60:.1f} min)"
    )
    batch = Path(out) / "batch.json"
    if batch.exists():
        b = json.loads(batch.read_text())
        print(f"batch: {b['batch']} stimuli per synthesis job ({b['why']})")
    for f in summary["failed"]:
        print(f"failed: {f}")
    if summary["report"]:
        print(f"report: {Path(summary['report']).resolve()}")
    if summary["failed"]:
        raise CLIError(f"{len(summary['failed'])} job(s) failed (see {Path(out) / 'run.log'}); rerun to retry them.")


def _cmd_status(args: argparse.Namespace) -> None:
    from metamers.runs.run import RunError, format_status, run_status

    try:
        print(format_status(run_status(args.directory)))
    except RunError as e:
        raise CLIError(str(e)) from e


def _cmd_report(args: argparse.Namespace) -> None:
    from metamers.report.html import write_report
    from metamers.runs.run import RunError

    try:
        path = write_report(args.directory)
    except RunError as e:
        raise CLIError(str(e)) from e
    print(f"report: {path.resolve()}")


def _cmd_corpus(args: argparse.Namespace) -> None:
    from metamers.audio.corpus import build_corpus, corpus_splits, default_root
    from metamers.audio.speech import SpeechSourceMissing

    root = Path(args.root) if args.root else default_root(args.kind)
    snr = None if args.clean_tests else (-10.0, 10.0)
    sizes = {k: v for k, v in (("n_train", args.train), ("n_valid", args.valid), ("n_test", args.test)) if v}
    specs = corpus_splits(args.kind, seed=args.seed, test_snr_db=snr, **sizes)
    wanted = args.splits.split(",") if args.splits else list(specs)
    unknown = [w for w in wanted if w not in specs]
    if unknown:
        raise CLIError(f"unknown split(s) {', '.join(unknown)}; choose from {', '.join(specs)}.")
    for name in wanted:
        try:
            folder = build_corpus(specs[name], root, progress=not args.quiet)
        except SpeechSourceMissing as e:
            raise CLIError(str(e)) from e
        print(f"{name}: {specs[name].n_clips} clips ({specs[name].source}) in {folder}")


def _cmd_train(args: argparse.Namespace) -> None:
    from metamers.audio.corpus import CORPORA, default_root
    from metamers.audio.training import TrainingError, TrainSettings, train_word_net
    from metamers.models.word_zoo import export_weights

    try:
        settings = TrainSettings(
            architecture=args.architecture.replace("-", "_"),
            width=args.width,
            task=args.task,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            patience=args.patience,
            target_accuracy=args.target_accuracy,
            max_minutes=args.max_minutes,
            seed=args.seed,
            background_weight=args.background_weight,
        )
        out = Path(args.out)
        corpus = args.corpus or "default"
        root = default_root(corpus) if corpus in CORPORA and not Path(corpus).exists() else Path(corpus)
        if corpus in CORPORA and not (root / "train" / "meta.json").exists():
            raise TrainingError(f"no corpus at {root}: build it with `metamers corpus --kind {corpus}`.")
        card = train_word_net(root, out, settings, device=args.device, progress=not args.quiet)
    except TrainingError as e:
        raise CLIError(str(e)) from e
    print(
        f"stopped: {card['stopped']}; best epoch {card['best_epoch']}, validation accuracy {card['valid_accuracy']:.3f}"
    )
    for split, r in card["held_out"].items():
        print(f"held out {split} ({r['source']}, {r['clips']} clips): accuracy {r['accuracy']:.3f}")
        for speaker, sr in r.get("speakers", {}).items():
            print(f"    {speaker}: {sr['accuracy']:.3f} ({sr['clips']} clips)")
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    path = export_weights(state, card, out / "weights.safetensors")
    print(f"wrote {path} (float16) and its card {path.with_suffix('.json')}")
    print(f"load it with metamers.load('word-{args.architecture.replace('_', '-')}', weights='{path}')")


_WEB_AND_DATABASE = ("starlette", "uvicorn", "sqlalchemy", "multipart")


def _experiments():
    """The experiments package, or one clear line when the libraries it serves and stores with are not installed."""
    try:
        import uvicorn  # noqa: F401  (what `experiment serve` runs the server with)

        import metamers.experiments as experiments
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in _WEB_AND_DATABASE:
            raise
        raise CLIError(
            f"the human experiments need {e.name}, which is not installed: pip install 'metamers[experiments]' "
            "(`make install` installs it)."
        ) from None
    return experiments


def _cmd_experiment_build(args: argparse.Namespace) -> None:
    exp = _experiments().build_experiment(
        args.run,
        args.out,
        kind=args.kind,
        models=args.models.split(",") if args.models else None,
        trials_per_condition=args.trials_per_condition,
        participants=args.participants,
        practice=args.practice,
        catch=args.catch,
        presentation_ms=args.presentation_ms,
        completion_code=args.completion_code,
        seed=args.seed,
    )
    n = len(exp["lists"][0])
    print(f"experiment: {args.out} ({exp['kind']}, {len(exp['conditions'])} conditions incl. natural, "
          f"{exp['trials_per_condition']} trials per condition, {n} trials per participant incl. "
          f"{exp['practice']} practice and {exp['catch']} catch, {len(exp['lists'])} trial lists)")  # fmt: skip
    for c in exp["conditions"]:
        print(f"  {c['id']:8} {c['model'] or '(natural)':28} {c['stage']}")
    if exp["catch"] == 0:
        print("no catch trials: the natural condition uses every natural stimulus (give the run more stimuli, or "
              "--trials-per-condition 1 --catch 1)")  # fmt: skip
    print(f"completion code: {exp['completion_code']}")
    print(f"researcher token: in {args.out}/researcher_token.txt (progress and export pages ask for it)")
    print(f"serve it: metamers experiment serve {args.out}")


def _cmd_experiment_serve(args: argparse.Namespace) -> None:
    experiments = _experiments()
    import uvicorn

    if not 1 <= args.port <= 65535:
        raise CLIError(f"--port {args.port}: a TCP port must be from 1 to 65535 (e.g. 8000).")
    app = experiments.create_app(args.experiment, db_url=args.db)
    url = f"http://{args.host}:{args.port}/"
    print(f"participants: {url}?participant=ID  (Prolific passes ?PROLIFIC_PID=..., MTurk ?workerId=...)")
    print(f"progress:     {url}researcher?token=$(cat {args.experiment}/researcher_token.txt)")
    print(f"responses go to {args.db or experiments.default_url(args.experiment)}")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def _cmd_experiment_analyze(args: argparse.Namespace) -> None:
    experiments = _experiments()
    summary = experiments.analyze_experiment(args.experiment, db_url=args.db, out=args.out)
    print(experiments.format_summary(summary))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="metamers",
        description="Model metamers for any PyTorch model (Feather et al., NeurIPS 2019).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("layers", help="list the layers of a model, marking ReLU outputs and the model's stages")
    q.add_argument("model", help="a zoo name (see `metamers models`) or package.module:callable giving an nn.Module")
    q.add_argument("--input-shape", help="one input's shape, e.g. 3,224,224 (needed for package.module:callable)")
    q.add_argument("--stages", action="store_true", help="only the model's default generation stages")
    q.add_argument("--weights", help="a state-dict file for the zoo architecture (e.g. another training seed)")
    q.set_defaults(func=_cmd_layers)

    q = sub.add_parser("models", help="list the model zoo: what is available here, and what is missing and why")
    q.set_defaults(func=_cmd_models)

    q = sub.add_parser("synthesize", help="synthesize metamers of photos or spoken words at a layer of a zoo model")
    q.add_argument(
        "model",
        help="a zoo name (efficientnet-lite0, word-standard), or your own model: package.module:callable, "
        "path/to/file.py:callable, or a TorchScript file",
    )
    q.add_argument(
        "--layer",
        required=True,
        help="a layer or stage name (see `metamers layers MODEL`); audio models take a comma-separated list",
    )
    q.add_argument(
        "--words", default="seven,tomorrow", help="audio models: vocabulary words to make clips of (%(default)s)"
    )
    q.add_argument(
        "--speech",
        default="recorded",
        choices=["recorded", "espeak-ng", "flite"],
        help="audio models: the clips' speech source (default: %(default)s, real recordings)",
    )
    q.add_argument("--weights", help="a state-dict or safetensors file: another training run of a zoo architecture, "
                   "or your own model's weights")  # fmt: skip
    q.add_argument("--photos", default="chelsea,coffee", help="scikit-image photos, comma-separated (%(default)s)")
    q.add_argument("--images", help="your own pictures instead: a folder (searched recursively) or a glob of PNG/JPEG")
    q.add_argument("--input-shape", help="your own model: one input's shape, e.g. 3,224,224 (the default for images)")
    q.add_argument("--kind", default="image", choices=["image", "audio"], help="your own model: its input kind")
    q.add_argument("--mean", help="your own model: per-channel mean, e.g. 0.485,0.456,0.406 (applied in the graph)")
    q.add_argument("--std", help="your own model: per-channel std, e.g. 0.229,0.224,0.225")
    q.add_argument("--labels", help="your own model: a text file of labels (one per line) or 'imagenet'")
    q.add_argument("--preset", default="feather2019", help="feather2019 (default: the paper's 15000 iterations), "
                   "feather2023, or fidelity (L-BFGS, each metamer stopping at rho 0.99 with its label)")  # fmt: skip
    q.add_argument("--iterations", type=int, help="iterations (default: 15000 for images, 2000 for audio)")
    q.add_argument("--lr", type=float, help="learning rate (default: 0.001)")
    q.add_argument("--stop-rho", type=float, help="stop each metamer once its Spearman rho at the layer reaches this "
                   "(e.g. 0.99), judged on the PNG or WAV it writes; --iterations is then a cap")  # fmt: skip
    q.add_argument("--stop-label", action="store_true", help="with --stop-rho: also wait for the stimulus's label")
    q.add_argument("--seed", type=int, help="seed of the initial noise")
    q.add_argument("--out", default="metamers-output", help="output directory, laid out as a plan's run (results/, "
                   "media/: `metamers validate` reads it); rerun to resume (default: %(default)s)")  # fmt: skip
    q.add_argument("--checkpoint-every", type=int, default=500, help="iterations between checkpoints")
    q.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when present, else cpu)")
    q.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="arithmetic of the model's forward pass (default: auto = float32; bfloat16/float16 are faster "
                   "on GPUs with tensor cores and cost some fidelity)")  # fmt: skip
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_synthesize)

    q = sub.add_parser("validate", help="validate the metamers in a directory: rho at every stage, nulls, verdicts")
    q.add_argument("directory", help="a directory of synthesis results (from `metamers synthesize` or the demo)")
    q.add_argument("--pairs", type=int, default=1_000_000, help="pairs per null distribution (default: %(default)s)")
    q.add_argument("--percentile", type=float, default=100.0,
                   help="rho must exceed this percentile of the null; 100 = its maximum, the paper's rule")  # fmt: skip
    q.add_argument("--ignore-label", action="store_true", help="do not require the model's label to match")
    q.add_argument("--source", choices=["png", "full"], default="png",
                   help="what a person sees or hears (8-bit PNG, 16-bit WAV; default) or full precision")  # fmt: skip
    q.add_argument("--seed", type=int, default=0, help="seed of the null's augmentations and pairs")
    q.set_defaults(func=_cmd_validate)

    q = sub.add_parser("transfer", help="classify a validated directory's accepted metamers with other models "
                       "(audio: words, or speech for yamnet; recognizers of the other kind skipped)",
                       description="Classify a validated directory's accepted metamers with other models. Image "
                       "generators are judged in the --spaces label spaces; audio metamers where the label spaces "
                       "meet: by a word network against each clip's word, by an AudioSet network (yamnet) on "
                       "whether its top class is a speech class. Recognizers of the other kind than a generator "
                       "(image vs audio) are skipped for it.")  # fmt: skip
    q.add_argument("directory", help="a directory validated by `metamers validate`")
    q.add_argument("--recognizers", required=True,
                   help="comma-separated zoo names, image and/or audio (e.g. efficientnet-lite1,vgg19 or "
                   "word-reduced-aliasing,word-standard-random); each judges only generators of its kind")  # fmt: skip
    q.add_argument("--source", choices=["png", "full"], default="png",
                   help="classify what a person sees or hears, the 8-bit PNG images or 16-bit WAV clips (default), "
                   "or the full-precision metamers")  # fmt: skip
    q.add_argument("--spaces", default="imagenet,16-way",
                   help="label spaces of image generators (default: %(default)s); audio generators are always judged "
                   "in the 61-way word space")  # fmt: skip
    q.set_defaults(func=_cmd_transfer)

    q = sub.add_parser("relu-compare", help="Figure 2(c): matching fidelity with the standard vs linear-gradient ReLU")
    q.add_argument("model", help="a zoo name")
    q.add_argument("--layers", required=True, help="comma-separated layer or stage names")
    q.add_argument("--photos", default="chelsea,coffee,rocket,camera", help="scikit-image photos (%(default)s)")
    q.add_argument("--iterations", type=int, default=300, help="iterations per metamer (default: %(default)s)")
    q.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default: %(default)s)")
    q.add_argument("--seed", type=int, default=0, help="seed of the initial noise (shared by both variants)")
    q.add_argument("--out", default="relu-comparison", help="output directory (default: %(default)s)")
    q.set_defaults(func=_cmd_relu_compare)

    q = sub.add_parser(
        "demo",
        help="the whole paper on the embedded defaults: image and audio metamers, validation, transfer, report",
        description="Runs the demo plan (metamers/runs/demo.toml): metamers of 16 photos at 3 stages of pretrained "
        "EfficientNet-Lite0, each stopping once it matches its photo (rho 0.99 with the photo's label) or at 600 "
        "iterations, and of 2 recorded words at 3 stages of the shipped word network, validated against nulls, "
        "recognized by the other pretrained networks and the random controls, and an HTML report. About "
        "13 minutes on 2 CPU cores; rerun to resume. The flags scale it up to the paper's settings.",
    )
    q.add_argument("--out", default="demo-output", help="run directory; rerun to resume (default: %(default)s)")
    q.add_argument("--iterations", type=int, help="iterations per metamer (demo: at most 600 images, 400 sounds; "
                   "paper: 15000)")  # fmt: skip
    q.add_argument("--images", type=int, help="number of pictures: the first N of the demo's 16, or more from all "
                   "537 offline pictures (default: 16)")  # fmt: skip
    q.add_argument("--words", type=int, help="number of spoken words, up to 61 (default: 2)")
    q.add_argument("--pairs", type=int, help="pairs per null distribution (demo: 20000; paper: 1000000)")
    q.add_argument(
        "--no-audio", action="store_true", help="the image half alone (by default the demo needs the speech packages)"
    )
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_demo)

    q = sub.add_parser(
        "run",
        help="carry out a plan (TOML): synthesis, validation, transfer, report; rerun to resume",
        description="Carry out a plan: every (model, layer, batch of stimuli) synthesis job, then validation, "
        "transfer and the report, in one self-contained run directory. Killed at any moment, the same command "
        "(or `metamers run DIR`) resumes where it stopped. `metamers run --example` prints a plan with every field.",
    )
    q.add_argument("plan", nargs="?", help="a plan file (TOML), or a run directory to resume")
    q.add_argument("--out", help="the run directory (created; it must hold the same plan when it exists)")
    q.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when present, else cpu)")
    q.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="run the synthesis jobs here (default) or as tasks on a Ray cluster (pip install "
        "'metamers[ray]'; the run directory must be on a filesystem every worker sees)",
    )
    q.add_argument("--address", help="Ray cluster to join, e.g. auto or ray://head:10001 (default: start a local one)")
    q.add_argument("--workers", type=int, help="CPUs of the local Ray cluster (default: all); one per task")
    q.add_argument("--example", action="store_true", help="print a plan with every field and its default, then exit")
    q.add_argument("--quiet", action="store_true", help="no progress bar (the log is in DIR/run.log)")
    q.set_defaults(func=_cmd_run)

    q = sub.add_parser("status", help="what a run has done: jobs done, running, interrupted, failed, per model/stage")
    q.add_argument("directory", help="a run directory")
    q.set_defaults(func=_cmd_status)

    q = sub.add_parser("report", help="(re)write a run's HTML report: metamers, validation, transfer, provenance")
    q.add_argument("directory", help="a run directory")
    q.set_defaults(func=_cmd_report)

    q = sub.add_parser("corpus", help="build the offline speech corpus (espeak-ng, flite, recorded words)")
    q.add_argument("root", nargs="?", help="where to build it (default: $METAMERS_CORPUS or ~/.cache/metamers/corpus)")
    q.add_argument(
        "--kind",
        default="default",
        choices=["default", "real"],
        help="default: the shipped networks' 61-word corpus; real: 159 words, real speakers and backgrounds, "
        "built by default in ~/.cache/metamers/corpus-real",
    )
    q.add_argument("--splits", help="comma-separated subset of the splits, e.g. train,valid (default: all)")
    q.add_argument("--train", type=int, help="training clips (default: 8000; 16000 for --kind real)")
    q.add_argument("--valid", type=int, help="validation clips (default: 1000; 2000 for --kind real)")
    q.add_argument("--test", type=int, help="clips per held-out test split (default: 1000)")
    q.add_argument("--clean-tests", action="store_true", help="held-out splits without background sounds")
    q.add_argument("--seed", type=int, default=0, help="base seed (default: %(default)s)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_corpus)

    q = sub.add_parser("train", help="train a word network on the speech corpus (checkpoints; rerun to resume)")
    q.add_argument("--architecture", default="standard", choices=["standard", "reduced-aliasing"])
    q.add_argument("--width", type=float, default=0.125, help="channel scale, 1.0 = the paper's (default: %(default)s)")
    q.add_argument("--task", default="word", choices=["word", "background", "joint"])
    q.add_argument(
        "--background-weight",
        type=float,
        default=0.1,
        help="joint task: scale of the background head's loss against the word head's (default: %(default)s; at 1.0 "
        "the word head stayed at chance)",
    )
    q.add_argument(
        "--corpus",
        help="corpus root, or a corpus's name: 'default' (~/.cache/metamers/corpus, or $METAMERS_CORPUS) or 'real' "
        "(the real-speech corpus, ~/.cache/metamers/corpus-real); default: 'default'",
    )
    q.add_argument("--out", required=True, help="run folder: checkpoint, best weights, card; rerun to resume")
    q.add_argument("--epochs", type=int, default=30, help="at most this many epochs (default: %(default)s)")
    q.add_argument("--batch-size", type=int, default=32, help="(default: %(default)s)")
    q.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    q.add_argument("--patience", type=int, default=4, help="epochs without improvement before stopping (%(default)s)")
    q.add_argument("--target-accuracy", type=float, help="stop at this validation accuracy (the paper's rule)")
    q.add_argument("--max-minutes", type=float, help="stop after this much training time")
    q.add_argument("--seed", type=int, default=0, help="initialization and shuffling seed (default: %(default)s)")
    q.add_argument("--device", help="cpu, cuda, ... (default: cuda when present, else cpu)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_cmd_train)
    q = sub.add_parser("experiment", help="human recognition experiments in the browser: build, serve, analyze")
    esub = q.add_subparsers(dest="action", required=True, metavar="ACTION")
    e = esub.add_parser("build", help="turn a run's accepted metamers into an experiment (trial lists, stimuli)")
    e.add_argument("run", help="a run directory whose validation has finished")
    e.add_argument("--out", required=True, help="the new experiment's directory")
    e.add_argument("--kind", choices=["image", "audio"], help="which stimuli, when the run has both")
    e.add_argument("--models", help="comma-separated generating models (default: all of that kind)")
    e.add_argument(
        "--trials-per-condition",
        type=int,
        help="per participant (default: the smallest condition's size, at most 10 images / 5 sounds)",
    )
    e.add_argument("--participants", type=int, default=16, help="distinct trial lists (default: %(default)s)")
    e.add_argument("--practice", type=int, default=3, help="practice trials with feedback (default: %(default)s)")
    e.add_argument(
        "--catch",
        type=int,
        help="catch trials on natural stimuli (default: 2, or as many as the natural stimuli allow)",
    )
    e.add_argument("--presentation-ms", type=int, default=200, help="image display time (default: %(default)s)")
    e.add_argument("--completion-code", help="code shown at the end (default: random)")
    e.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    e.set_defaults(func=_cmd_experiment_build)
    e = esub.add_parser("serve", help="run the experiment's web server (participant page, researcher pages)")
    e.add_argument("experiment", help="an experiment directory")
    e.add_argument("--host", default="127.0.0.1", help="(default: %(default)s; 0.0.0.0 to accept other machines)")
    e.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    e.add_argument("--db", help="database URL (default: sqlite in the experiment; postgresql+psycopg://... )")
    e.set_defaults(func=_cmd_experiment_serve)
    e = esub.add_parser("analyze", help="exclusions, proportion correct per condition with SEM, figure, CSVs")
    e.add_argument("experiment", help="an experiment directory")
    e.add_argument("--db", help="database URL (default: sqlite in the experiment)")
    e.add_argument("--out", help="where to write (default: EXPERIMENT/analysis)")
    e.set_defaults(func=_cmd_experiment_analyze)
    return p


_LISTINGS = ("layers", "models", "status")
"""Commands that only print a listing: they end quietly, killed by SIGPIPE, when a pipe's reader (``head``) stops.
The others keep Python's SIGPIPE handling, so that a client who hangs up raises an error in the writer instead."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``metamers`` command.

    User errors (bad names, settings, inputs, files; :func:`metamers._cli_checks.user_errors`) print one line and exit
    with status 2; set ``METAMERS_DEBUG=1`` to see the traceback instead.
    """
    import os
    import signal

    args = build_parser().parse_args(argv)
    if args.command in _LISTINGS:  # `metamers layers ... | head` ends quietly; a server must not die of a closed socket
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        check_args(args)
        args.func(args)
    except user_errors() as e:
        if os.environ.get("METAMERS_DEBUG"):
            raise
        print(f"metamers: error: {error_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
