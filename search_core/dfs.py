"""DFS (non-linear search): one particle per item dives; below the threshold δ_t it backtracks ΔT steps.

Paper, "DFS Non-linear Search": if the score of x0|t is below δ_t and the NFE budget allows, re-noise with the forward
kernel q(x_{t+ΔT} | x_t) (fresh noise at the top) and retry; return the best complete sample seen. Items dive in
one batch at their own noise levels (one model call per iteration, per-row sigmas). A backtrack is only taken when
the budget left still covers the full dive back down (local search's recurrences included), so every item completes
and the budget is never exceeded. A retry that fails again before passing the level it failed at goes
``backtrack_growth`` times further up (ΔT, 2ΔT, 4ΔT, ...): a sample in the wrong mode can then leave it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import DFSConfig, LangevinConfig
from .evaluation import Evaluator
from .guidance import advance, guided_denoise
from .noise import forward_kernel, randn_like
from .particles import check_inputs, fresh_start
from .schedules import dfs_threshold
from .streams import noise_sources
from .trace import Trace, to_list


def _denoise(ev, xs, sigma_rows, items, guided, local, guide_fn, noise_form):
    """x0 predictions, guided on the rows whose step has local search (``guided``)."""
    if local is None or not bool(guided.any()):
        return ev.denoise(xs, sigma_rows, items)
    x0 = torch.empty_like(xs)
    x0[guided] = guided_denoise(ev, xs[guided], sigma_rows[guided], items[guided], local, guide_fn, noise_form,
                                report=False)[0]
    if (~guided).any():
        x0[~guided] = ev.denoise(xs[~guided], sigma_rows[~guided], items[~guided])
    return x0


def dive_costs(n_steps: int, local: LangevinConfig | None) -> list[int]:
    """NFE from step t to the end of a dive, t = 0..n_steps: 1 per step, + recur_steps where local search runs."""
    costs = [1 + (local.recur_steps if local is not None and local.applies_at(s) else 0) for s in range(n_steps)]
    out = [0] * (n_steps + 1)
    for s in range(n_steps - 1, -1, -1):
        out[s] = out[s + 1] + costs[s]
    return out


def sample_dfs(model, x, sigmas, extra_args=None, callback=None, disable=None, *, score_fn, generator,
               config: DFSConfig | None = None, select_fn=None, local: LangevinConfig | None = None, guide_fn=None,
               noise_form: str = "eps", eta: float = 1.0, max_batch: int | None = None, trace: Trace | None = None,
               start_x0: torch.Tensor | None = None, resume: dict | None = None) -> torch.Tensor:
    """DFS with score-driven backtracking; returns the best complete sample of each item [B, ...].

    ``generator``: a ``torch.Generator`` (all noise) or a ``ParticleStreams`` (one row per item: each item's noise
    from its own stream). With streams, ``trace.state`` holds, for every item that wanted to backtrack but had no
    budget left, its state at that moment and its returned sample; ``resume=`` that state with a larger
    ``nfe_budget`` continues those items and gives what one run with the larger budget gives, unless the earlier
    run's sample was better (then that one: never worse). ``trace``: as ``sample_bfs``.
    """
    config = config or DFSConfig()
    sigmas = check_inputs(x, sigmas, generator, 1, noise_form, eta)
    streams, generator = noise_sources(generator)
    n_items, n_steps = x.shape[0], sigmas.numel() - 1
    config = config.validate(n_steps).resolved(n_steps)
    if not callable(score_fn):
        raise ValueError("score_fn is required: a callable x0 [M, ...] -> rewards [M] (the verifier)")
    if local is not None:
        local.validate()
    guide_fn = guide_fn or score_fn
    dive = dive_costs(n_steps, local)
    budget = config.nfe_budget or 2 * dive[0]
    if budget < dive[0]:
        raise ValueError(f"nfe_budget={budget} is below the {dive[0]} NFE one dive needs (local search's recurrences "
                         f"included); raise it to at least {dive[0]}")
    max_back = math.inf if config.max_backtracks is None else config.max_backtracks
    device = x.device

    ev = Evaluator(model, extra_args, n_items, max_batch, device)
    trace = Trace.begin(trace, "dfs")
    cfg = config.to_dict()
    cfg.update(nfe_budget=budget, local=None if local is None else local.to_dict(), dual_verifiers=select_fn is not None)
    trace.emit("start", n_items=n_items, n_particles=1, n_steps=n_steps, sigmas=sigmas, noise_form=noise_form,
               config=to_list(cfg))
    thresholds = dfs_threshold(config, sigmas[:-1], noise_form)
    checked = torch.zeros(n_steps, dtype=torch.bool, device=device)
    if config.check_steps is not None:
        checked[[s for s in config.check_steps if 0 <= s < n_steps]] = True
    else:
        checked[config.check_from:] = True
    checked[-1] = True  # the complete sample is always judged
    guided_at = torch.tensor([local is not None and local.applies_at(s) for s in range(n_steps)], device=device)
    dive_t = torch.tensor(dive, device=device)

    if streams is not None and len(streams) != n_items:
        raise ValueError(f"generator: the ParticleStreams have {len(streams)} rows for {n_items} items (DFS: one "
                         f"stream per item: ParticleStreams(seed, {n_items}))")
    d = _Dives.start(x)
    if resume is not None:
        _restore(resume, budget, streams, ev, d)
    snap = _Snapshots(x, streams)
    iteration = 0
    while not bool(d.done.all()):
        act = (~d.done).nonzero()[:, 0]
        xa, sa = d.x[act], d.step[act]
        used_before = ev.nfe_per_item[act].clone()
        sigma_rows, next_rows = sigmas[sa], sigmas[sa + 1]
        x0 = _denoise(ev, xa, sigma_rows, act, guided_at[sa], local, guide_fn, noise_form)
        judged = checked[sa]
        score = torch.full((act.numel(),), math.nan, device=device)
        if judged.any():  # the verifier runs only where its score is used
            score[judged] = ev.score(score_fn, x0[judged])
        last = sa == n_steps - 1
        thr = thresholds[sa]
        passed = judged & (score >= thr)
        progress = passed & (sa >= d.fail_step[act])
        fails_before = d.fails[act].clone()
        d.fails[act[progress]] = 0
        jump = torch.ceil(config.backtrack_steps * config.backtrack_growth ** d.fails[act].double()).long()
        target = (sa - jump).clamp_min(0)
        room = budget - ev.nfe_per_item[act] >= dive_t[target]
        wants_back = judged & (score < thr) & (d.backtracks[act] < max_back)
        back = wants_back & room
        # the first time an item wants to backtrack but the budget forbids it: a larger budget diverges here
        snap.take(wants_back & ~room, act, xa, sa, d, fails_before, used_before)
        if last.any():  # x0 at the last step is a complete sample: keep the best one seen
            final = ev.score(select_fn, x0[last], "select_fn") if select_fn is not None else score[last]
            rows = act[last]
            better = final > d.best_r[rows]
            d.best_r[rows[better]] = final[better]
            d.best_x[rows[better]] = x0[last][better]
        columns = zip(sa.tolist(), sigma_rows.tolist(), act.tolist(), to_list(score), thr.tolist(),
                      ev.nfe_per_item[act].tolist())
        for st, sg, item, sc, th, used in columns:  # plain data for the UI, one record per diving item
            trace.emit("step", step=st, sigma=sg, item=item, score=sc, threshold=th, nfe=used)
        x_before = d.x.clone() if callback is not None else None
        forward = ~back & ~last
        if forward.any():
            for with_local in (True, False):  # recurrences only where the local settings apply
                rows = (forward & (guided_at[sa] == with_local)).nonzero()[:, 0]
                if rows.numel():
                    noise = generator if streams is None else streams.rows(act[rows])
                    d.x[act[rows]] = advance(ev, xa[rows], x0[rows], sigma_rows[rows], next_rows[rows], act[rows],
                                            noise, noise_form, eta, local if with_local else None, guide_fn,
                                            report=False)[0]
            d.step[act[forward]] += 1
        if back.any():
            rows = back.nonzero()[:, 0]
            to = target[rows]
            noise = generator if streams is None else streams.rows(act[rows])
            renoised = forward_kernel(xa[rows], sigma_rows[rows], sigmas[to], randn_like(xa[rows], noise),
                                      noise_form)
            top = to == 0  # back at the top: a fresh start
            if top.any():
                start = None if start_x0 is None else start_x0.to(x).expand_as(x)[act[rows]][top]
                noise = generator if streams is None else noise.subset(top)
                renoised[top] = fresh_start(renoised[top], sigmas[0], noise_form, noise, start)
            d.x[act[rows]] = renoised
            d.step[act[rows]] = to
            d.backtracks[act[rows]] += 1
            d.fails[act[rows]] += 1
            d.fail_step[act[rows]] = sa[rows]
            for k, item in enumerate(act[rows].tolist()):
                trace.emit("backtrack", item=item, step_from=int(sa[rows[k]]), step_to=int(to[k]),
                           score=float(score[rows[k]]), threshold=float(thr[rows[k]]),
                           nfe=int(ev.nfe_per_item[item]))
        d.done[act[last & ~back]] = True
        if callback is not None:
            preview = d.best_x.clone()
            preview[act] = x0
            level = sigmas[int(sa.min())]  # rows dive at their own levels: the highest one is reported
            callback({"i": min(iteration, n_steps - 1), "denoised": preview, "x": x_before, "sigma": level,
                      "sigma_hat": level})
        iteration += 1

    best_x, best_r = d.best_x, d.best_r
    if resume is not None:  # never worse: a sample the smaller run completed after its bound decision stays if better
        kept_r = resume["kept_r"].to(best_r)
        better = kept_r > best_r
        best_r = torch.where(better, kept_r, best_r)
        best_x = torch.where(_rows_mask(better, best_x), resume["kept_x"].to(best_x), best_x)
    trace.samples, trace.particles, trace.rewards = best_x, best_x[:, None], best_r[:, None]
    trace.order = torch.zeros(n_items, 1, dtype=torch.long, device=device)
    trace.nfe, trace.nfe_per_item = ev.nfe, ev.nfe_per_item.tolist()
    trace.grad_evals, trace.denoiser_grad_evals, trace.score_evals = (ev.grad_evals, ev.denoiser_grad_evals,
                                                                      ev.score_evals)
    trace.backtracks = d.backtracks.tolist()
    trace.state = snap.state(budget, n_steps, best_x, best_r, ev.nfe_per_item) if streams is not None else None
    trace.emit("final", rewards=trace.rewards, order=trace.order, selected=[0] * n_items, nfe=ev.nfe,
               nfe_per_item=trace.nfe_per_item, grad_evals=ev.grad_evals)
    return best_x


class _Snapshots:
    """Per item, the state at the first budget-bound backtrack decision (what a larger budget resumes from)."""

    def __init__(self, x: torch.Tensor, streams):
        n = x.shape[0]
        self.streams = streams
        self.open = torch.zeros(n, dtype=torch.bool, device=x.device)
        self.x, self.best_x = torch.zeros_like(x), torch.zeros_like(x)
        self.ints = torch.zeros(n, 5, dtype=torch.long, device=x.device)  # step, backtracks, fails, fail_step, nfe
        self.best_r = torch.full((n,), -math.inf, device=x.device)
        self.rng = [None] * n

    def take(self, bound, act, xa, sa, dives: "_Dives", fails_before, used_before) -> None:
        if self.streams is None or not bool(bound.any()):
            return
        rows = bound.nonzero()[:, 0]
        items = act[rows]
        new = ~self.open[items]
        rows, items = rows[new], items[new]
        if not items.numel():
            return
        self.open[items] = True
        self.x[items] = xa[rows]
        self.best_x[items], self.best_r[items] = dives.best_x[items], dives.best_r[items]
        self.ints[items] = torch.stack([sa[rows], dives.backtracks[items], fails_before[rows], dives.fail_step[items],
                                        used_before[rows]], 1)
        for item in items.tolist():  # no noise is drawn between the iteration's start and the decision
            self.rng[item] = self.streams.generators[item].get_state()

    def state(self, budget, n_steps, best_x, best_r, nfe_per_item) -> dict:
        """Tensors to resume from (``resume=``): open items from their snapshot, the others are finished."""
        open_ = self.open
        rng = [r if r is not None else self.streams.generators[i].get_state() for i, r in enumerate(self.rng)]
        return {"budget": int(budget), "n_steps": int(n_steps), "open": open_.clone(), "x": self.x.clone(),
                "best_x": torch.where(_rows_mask(open_, best_x), self.best_x, best_x),
                "best_r": torch.where(open_, self.best_r, best_r), "ints": self.ints.clone(),
                "nfe": torch.where(open_, self.ints[:, 4], nfe_per_item), "rng": torch.stack(rng),
                "kept_x": best_x.clone(), "kept_r": best_r.clone()}


def _rows_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1, *([1] * (like.dim() - 1)))


def _restore(state: dict, budget: int, streams, ev, dives: "_Dives") -> None:
    """Load ``state`` into the dives; the items without a snapshot are finished."""
    if streams is None:
        raise ValueError("resume needs the per-item streams the state was made with (generator=ParticleStreams(seed, "
                         "n_items))")
    if budget < int(state["budget"]):
        raise ValueError(f"resume: nfe_budget={budget} is below the {state['budget']} of the saved search; a resume "
                         f"only adds budget")
    open_ = state["open"].to(dives.x.device)
    dives.x.copy_(torch.where(_rows_mask(open_, dives.x), state["x"].to(dives.x), dives.x))
    dives.best_x.copy_(state["best_x"].to(dives.best_x))
    dives.best_r.copy_(state["best_r"].to(dives.best_r))
    ints = state["ints"].to(dives.step.device)
    for target, column in ((dives.step, 0), (dives.backtracks, 1), (dives.fails, 2), (dives.fail_step, 3)):
        target.copy_(torch.where(open_, ints[:, column], target))
    ev.nfe_per_item.copy_(state["nfe"].to(ev.nfe_per_item))
    streams.set_states(state["rng"])
    dives.done.copy_(~open_)


@dataclass
class _Dives:
    """Per item: where its dive is (x at step), whether it is done, its backtracking record, its best sample."""

    x: torch.Tensor           # [B, ...] the diving state
    step: torch.Tensor        # [B] the step x is at
    done: torch.Tensor        # [B] finished (a complete sample passed, or the budget ran out)
    backtracks: torch.Tensor  # [B] backtracks so far
    fails: torch.Tensor       # [B] consecutive failed retries (the jump grows with them)
    fail_step: torch.Tensor   # [B] step of the last failure (-1: none)
    best_x: torch.Tensor      # [B, ...] best complete sample seen
    best_r: torch.Tensor      # [B] its reward

    @classmethod
    def start(cls, x: torch.Tensor) -> "_Dives":
        n, device = x.shape[0], x.device
        zeros = lambda dtype: torch.zeros(n, dtype=dtype, device=device)  # noqa: E731
        return cls(x=x.clone(), step=zeros(torch.long), done=zeros(torch.bool), backtracks=zeros(torch.long),
                   fails=zeros(torch.long), fail_step=torch.full((n,), -1, dtype=torch.long, device=device),
                   best_x=torch.zeros_like(x), best_r=torch.full((n,), -math.inf, device=device))
