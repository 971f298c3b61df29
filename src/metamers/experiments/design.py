"""Trial lists for a recognition experiment: balanced across participants, randomized within each.

Pure functions of the stimuli and a seed, so that an experiment's lists can be rebuilt and checked.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["DesignError", "Trial", "trial_lists"]


class DesignError(ValueError):
    """The requested design cannot be made from the stimuli at hand."""


@dataclass(frozen=True)
class Trial:
    """One trial of a participant's list: which stimulus, and whether it is practice, main or catch."""

    stimulus: str
    phase: str  # "practice", "main" or "catch"

    def to_dict(self) -> dict:
        return {"stimulus": self.stimulus, "phase": self.phase}


def trial_lists(
    pools: Mapping[str, Sequence[str]],
    participants: int,
    per_condition: int,
    *,
    practice: Sequence[str] = (),
    catch_pool: Sequence[str] = (),
    catch: int = 0,
    seed: int = 0,
) -> list[list[Trial]]:
    """Balanced, randomized trial lists, one per participant.

    Every participant gets ``per_condition`` stimuli of every condition, drawn so that across participants each
    stimulus of a condition is used equally often (participant ``p`` takes the next ``per_condition`` stimuli of a
    fixed random order of the pool, wrapping around); no stimulus appears twice in one list. Catch trials are
    stimuli of ``catch_pool`` (natural ones) that the participant does not see in any condition. Practice trials
    come first, in order; main and catch trials follow, shuffled per participant.

    Parameters
    ----------
    pools : mapping of str to sequence of str
        Condition id -> the stimulus ids of that condition.
    participants : int
        Number of lists.
    per_condition : int
        Trials per condition per participant.
    practice : sequence of str
        Practice stimuli, the same for every participant.
    catch_pool : sequence of str
        Natural stimuli that catch trials draw from.
    catch : int
        Catch trials per participant.
    seed : int
        Seed of every random choice.

    Examples
    --------
    >>> lists = trial_lists({"a": ["a1", "a2"], "b": ["b1", "b2"]}, participants=2, per_condition=1)
    >>> sorted(t.stimulus for t in lists[0]), sorted(t.stimulus for t in lists[1])
    (['a2', 'b1'], ['a1', 'b2'])
    """
    if participants < 1:
        raise DesignError("participants must be at least 1.")
    if per_condition < 1:
        raise DesignError("trials per condition must be at least 1.")
    if catch < 0:
        raise DesignError("catch trials cannot be negative.")
    for cond, pool in pools.items():
        if len(set(pool)) != len(pool):
            raise DesignError(f"condition {cond!r} lists a stimulus twice.")
        if len(pool) < per_condition:
            raise DesignError(
                f"condition {cond!r} has {len(pool)} stimuli, fewer than the {per_condition} trials per condition "
                f"asked for; ask for at most {len(pool)} (or leave that condition out)."
            )
    rng = random.Random(seed)
    orders = {cond: rng.sample(list(pool), len(pool)) for cond, pool in sorted(pools.items())}
    catch_order = rng.sample(list(catch_pool), len(catch_pool))
    lists = []
    for p in range(participants):
        main: list[Trial] = []
        for order in orders.values():
            start = (p * per_condition) % len(order)
            main += [Trial(order[(start + j) % len(order)], "main") for j in range(per_condition)]
        seen = {t.stimulus for t in main}
        free = [s for s in catch_order if s not in seen and s not in practice]
        if len(free) < catch:
            raise DesignError(
                f"only {len(free)} natural stimuli are left for catch trials after the natural condition's "
                f"{per_condition}; ask for at most {len(free)} catch trials, or fewer trials per condition."
            )
        start = (p * catch) % len(free) if free else 0
        catches = [Trial(free[(start + j) % len(free)], "catch") for j in range(catch)]
        body = main + catches
        random.Random(f"{seed}-{p}").shuffle(body)
        lists.append([Trial(s, "practice") for s in practice] + body)
    return lists
