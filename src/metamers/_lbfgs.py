"""L-BFGS for a batch of independent items, one loss-and-gradient evaluation per iteration.

Every item has its own curvature history, direction and step length, so item ``i``'s path depends on item ``i``
alone (a batch equals its items made one at a time), and the state is a set of tensors that checkpoint exactly.

Each iteration evaluates the loss and gradient at the parameter (the candidate).  The step then, per item: accepts
the candidate if it satisfies the Armijo condition against the last accepted point (the first evaluation is always
accepted), records the curvature pair, and proposes a new candidate along the two-loop L-BFGS direction with step
``lr``; or, if not, halves the step and proposes a shorter candidate along the same direction.  Bounds are kept by
projecting each candidate (``clamp``).  :meth:`BatchLBFGS.best` gives the last accepted points.
"""

from __future__ import annotations

import torch

__all__: list[str] = []

_ARMIJO = 1e-4
_SMALLEST_STEP = 1e-9


class BatchLBFGS(torch.optim.Optimizer):
    """Per-item L-BFGS with a backtracking (Armijo) line search, one evaluation per step.

    Parameters
    ----------
    params : list of one tensor
        The batch of inputs, batch first.
    lr : float
        The first step length tried along each new direction (1 is the quasi-Newton step).
    history : int
        Curvature pairs kept per item.
    bounds : (float, float), optional
        Candidates are projected into these bounds.

    Examples
    --------
    >>> x = torch.full((2, 3), 5.0, requires_grad=True)
    >>> opt = BatchLBFGS([x], lr=1.0)
    >>> weight = torch.tensor([[1.0, 1.0, 1.0], [1.0, 10.0, 100.0]])  # the second item is badly scaled
    >>> for _ in range(30):
    ...     loss = (weight * (x - torch.tensor([1.0, 2.0, 3.0])).pow(2)).sum(1)
    ...     (x.grad,) = torch.autograd.grad(loss.sum(), x)
    ...     opt.step(loss.detach())
    >>> opt.best().round(decimals=3).tolist()
    [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    """

    def __init__(
        self, params: list[torch.Tensor], lr: float = 1.0, history: int = 10, bounds: tuple[float, float] | None = None
    ) -> None:
        super().__init__(params, {"lr": lr, "history": history, "bounds": bounds})

    @torch.no_grad()
    def step(self, losses: torch.Tensor, active: torch.Tensor | None = None) -> None:  # type: ignore[override]
        """Take the evaluation at the current parameter (``losses`` per item, the gradient in ``.grad``) and move
        each item in ``active`` (default all) to its next candidate."""
        group = self.param_groups[0]
        x = group["params"][0]
        st = self.state[x]
        n = x.shape[0]
        g = x.grad.detach().reshape(n, -1)
        f = losses.detach().to(x.dtype)  # state in the parameter's dtype: a checkpoint restores it exactly
        flat = x.detach().reshape(n, -1)
        live = torch.ones(n, dtype=torch.bool, device=x.device) if active is None else active.to(x.device)
        if not st:
            m = group["history"]
            st["x"], st["g"], st["f"] = flat.clone(), g.clone(), f.clone()
            st["d"] = -g.clone()
            st["t"] = float(group["lr"]) * (1.0 / g.abs().sum(1).clamp_min(1e-12)).clamp(max=1.0)  # a cautious start
            st["s"] = torch.zeros(m, *flat.shape, dtype=flat.dtype, device=x.device)
            st["y"] = torch.zeros_like(st["s"])
            st["rho"] = torch.zeros(m, n, dtype=x.dtype, device=x.device)
            st["count"] = torch.zeros(n, dtype=torch.long, device=x.device)
            self._propose(x, st, group, live)
            return
        s = flat - st["x"]
        armijo = f <= st["f"] + _ARMIJO * (st["g"] * s).sum(1)
        accept = live & armijo & torch.isfinite(f)
        reject = live & ~accept
        if bool(accept.any()):
            y = g - st["g"]
            sy = (s * y).sum(1)
            keep = accept & (sy > 1e-10)
            # the newest pair goes to the front of each item's history (items that keep none leave theirs as it is);
            # only data moves, in place
            kept = torch.nonzero(keep).flatten()
            if len(kept) == n:
                for name, new in (("s", s), ("y", y), ("rho", 1.0 / sy.clamp_min(1e-30))):
                    st[name] = torch.cat([new[None], st[name][:-1]])
            elif len(kept):
                for name, new in (("s", s), ("y", y), ("rho", 1.0 / sy.clamp_min(1e-30))):
                    old = st[name].index_select(1, kept)
                    st[name].index_copy_(1, kept, torch.cat([new.index_select(0, kept)[None], old[:-1]]))
            st["count"] = torch.where(keep, (st["count"] + 1).clamp(max=group["history"]), st["count"])
            took = torch.nonzero(accept).flatten()
            for name, new in (("x", flat), ("g", g), ("f", f)):
                st[name].index_copy_(0, took, new.index_select(0, took))
            d = self._direction(st)
            descent = (d * st["g"]).sum(1) < 0
            d = torch.where(descent.view(n, 1), d, -st["g"])  # not downhill: start again from the gradient
            st["d"].index_copy_(0, took, d.index_select(0, took))
            st["t"] = torch.where(accept, torch.full_like(st["t"], float(group["lr"])), st["t"])
        if bool(reject.any()):
            st["t"] = torch.where(reject, st["t"] * 0.5, st["t"])
            lost = reject & (st["t"] < _SMALLEST_STEP)  # the line search failed: forget the curvature, go downhill
            if bool(lost.any()):
                st["count"] = torch.where(lost, torch.zeros_like(st["count"]), st["count"])
                st["d"] = torch.where(lost.view(n, 1), -st["g"], st["d"])
                scale = (1.0 / st["g"].abs().sum(1).clamp_min(1e-12)).clamp(max=1.0)
                st["t"] = torch.where(lost, float(group["lr"]) * scale, st["t"])
        self._propose(x, st, group, live)

    @staticmethod
    def _direction(st: dict) -> torch.Tensor:
        """The two-loop recursion per item, over that item's ``count`` newest pairs."""
        q = -st["g"].clone()
        m = st["s"].shape[0]
        alphas = []
        for j in range(m):
            used = (st["count"] > j).to(q.dtype)
            a = st["rho"][j] * (st["s"][j] * q).sum(1) * used
            q -= a[:, None] * st["y"][j]
            alphas.append(a)
        s0, y0 = st["s"][0], st["y"][0]
        gamma = (s0 * y0).sum(1) / (y0 * y0).sum(1).clamp_min(1e-30)
        gamma = torch.where(st["count"] > 0, gamma, torch.ones_like(gamma))
        q *= gamma[:, None]
        for j in reversed(range(m)):
            used = (st["count"] > j).to(q.dtype)
            b = st["rho"][j] * (st["y"][j] * q).sum(1) * used
            q += (alphas[j] - b)[:, None] * st["s"][j]
        return q

    @staticmethod
    def _propose(x: torch.Tensor, st: dict, group: dict, live: torch.Tensor) -> None:
        n = x.shape[0]
        nxt = st["x"] + st["t"][:, None] * st["d"]
        if group["bounds"] is not None:
            nxt = nxt.clamp(*group["bounds"])
        if bool(live.all()):
            x.copy_(nxt.view(x.shape))
        else:
            x.copy_(torch.where(live.view(n, 1), nxt, x.detach().reshape(n, -1)).view(x.shape))

    def best(self) -> torch.Tensor:
        """The last accepted point of every item (the parameter's shape)."""
        x = self.param_groups[0]["params"][0]
        st = self.state[x]
        return st["x"].view_as(x).clone() if st else x.detach().clone()
