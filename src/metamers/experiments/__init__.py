"""Human recognition experiments in the browser: build one from a run, serve it, analyse the responses.

This room reads what a run wrote; it never synthesizes (a participant's request never starts an optimisation).

Examples
--------
>>> from metamers.experiments import build_experiment, create_app, analyze_experiment  # doctest: +SKIP
>>> build_experiment("runs/demo", "experiments/demo-images", kind="image")  # doctest: +SKIP
"""

from metamers.experiments.analyze import analyze_experiment, condition_summary, format_summary, tidy_trials
from metamers.experiments.build import HUMAN_NAMES, ExperimentError, build_experiment, load_experiment
from metamers.experiments.design import DesignError, Trial, trial_lists
from metamers.experiments.server import MAX_BODY, create_app
from metamers.experiments.store import Store, default_url

__all__ = [
    "HUMAN_NAMES",
    "MAX_BODY",
    "DesignError",
    "ExperimentError",
    "Store",
    "Trial",
    "analyze_experiment",
    "build_experiment",
    "condition_summary",
    "create_app",
    "default_url",
    "format_summary",
    "load_experiment",
    "tidy_trials",
    "trial_lists",
]
