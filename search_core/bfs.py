"""BFS (linear search): N particles per item denoise in one batch and are resampled by verifier scores.

Paper, "Unified BFS": weights w ∝ exp(λ_t · score) at resampling steps, with the three axes temperature / scoring /
resampling (``BFSConfig``; presets in ``presets.PRESETS``). Optional Langevin local search on every step (joint
scaling) and dual verifiers (``select_fn`` selects, ``score_fn``/``guide_fn`` guide). k-diffusion signature:
``sample_bfs(model, x, sigmas, extra_args, callback, disable, *, score_fn, generator, trace, ...) -> [B, ...]``.
"""
from __future__ import annotations

import logging
import math

import torch

from . import resampling
from .config import BeamConfig, BFSConfig, LangevinConfig, SoPConfig
from .evaluation import Evaluator
from .guidance import advance, guided_denoise
from .particles import ancestor_rows, check_inputs, expand_particles, gather_particles, item_view
from .path_weights import PathWeights
from .presets import get_preset
from .schedules import resample_steps, temperature
from .streams import noise_sources
from .trace import Trace, to_list

log = logging.getLogger(__name__)
SELECT_FOR = ("final", "resample_and_final")


def resolve_config(config: BFSConfig | SoPConfig | BeamConfig | None) -> BFSConfig | SoPConfig | BeamConfig:
    """The config to run: ``config``, or the paper's BFS when None (a preset by name: ``presets.get_preset``)."""
    if config is None:
        return get_preset("bfs")
    if not isinstance(config, (BFSConfig, SoPConfig, BeamConfig)):
        hint = f"; for a preset by name use config=get_preset({config!r})" if isinstance(config, str) else ""
        raise ValueError(f"config must be a BFSConfig (or a baseline's SoPConfig / BeamConfig), got "
                         f"{type(config).__name__}{hint}")
    return config.validate()


def _config_dict(config: BFSConfig, resample_at, local, n_steps, select_for, dual) -> dict:
    out = config.to_dict()
    out.update(preset=config.name, resample_at=sorted(resample_at), select_for=select_for, dual_verifiers=dual,
               local=None if local is None else local.to_dict(), lam_schedule=[
                   temperature(config, i, n_steps) for i in sorted(resample_at)])
    return to_list(out)  # plain data; λ = inf becomes null


def sample_bfs(model, x, sigmas, extra_args=None, callback=None, disable=None, *, score_fn, generator,
               n_particles: int = 4, config: BFSConfig | SoPConfig | BeamConfig | None = None, select_fn=None,
               select_for: str = "final", local: LangevinConfig | None = None, guide_fn=None,
               noise_form: str = "eps", eta: float = 1.0, max_batch: int | None = None, trace: Trace | None = None,
               start_x0: torch.Tensor | None = None, algorithm: str = "bfs") -> torch.Tensor:
    """BFS over N particles per item; returns the selected sample of each item [B, ...].

    ``config``: a ``BFSConfig`` (a preset: ``get_preset(name)``; None: the paper's BFS) or a baseline's ``SoPConfig``
    / ``BeamConfig``.
    ``generator``: a ``torch.Generator`` (every draw, particle noise and resampling) or a ``ParticleStreams`` (B x N
    rows: each particle's noise from its own stream, so its path does not depend on N, for extension:
    search_core/extend.py; resampling from the streams' ``population`` generator).
    ``trace``: a ``Trace`` to fill (events, live to its ``on_event``, and the result fields); None: not kept.
    ``start_x0``: the clean latent the start noise was added to (img2img); fresh particles start from
    a(σ0)·start_x0 + σ0·ε (zeros when None: text-to-image).
    """
    config = resolve_config(config)
    if not isinstance(config, BFSConfig):
        return _baseline(config, model, x, sigmas, extra_args, callback, disable, score_fn=score_fn,
                         generator=generator, n_particles=n_particles, select_fn=select_fn, select_for=select_for,
                         local=local, noise_form=noise_form, max_batch=max_batch, trace=trace, start_x0=start_x0,
                         algorithm=algorithm)
    sigmas = check_inputs(x, sigmas, generator, n_particles, noise_form, eta)
    streams, generator = noise_sources(generator)
    if not callable(score_fn):
        raise ValueError("score_fn is required: a callable x0 [M, ...] -> rewards [M] (the verifier)")
    if select_for not in SELECT_FOR:
        raise ValueError(f"select_for={select_for!r}; use 'final' (select_fn picks the final sample) or "
                         f"'resample_and_final' (select_fn also weights the resampling)")
    if local is not None:
        local.validate()
    guide_fn = guide_fn or score_fn
    weight_fn = select_fn if (select_fn is not None and select_for == "resample_and_final") else score_fn
    final_fn = select_fn or score_fn

    n_items, n, n_steps = x.shape[0], int(n_particles), sigmas.numel() - 1
    ev = Evaluator(model, extra_args, n_items, max_batch, x.device)
    trace = Trace.begin(trace, algorithm)
    items = torch.arange(n_items, device=x.device).repeat_interleave(n)
    resample_at = resample_steps(config, n_steps)
    warn_if_deterministic(eta, n, bool(resample_at) or config.final_ess_threshold is not None)
    trace.emit("start", n_items=n_items, n_particles=n, n_steps=n_steps, sigmas=sigmas, noise_form=noise_form,
               config=_config_dict(config, resample_at, local, n_steps, select_for, select_fn is not None))

    if streams is not None and len(streams) != n_items * n:
        raise ValueError(f"generator: the ParticleStreams have {len(streams)} rows for {n_items} items x {n} "
                         f"particles; make them ParticleStreams(seed, {n_items}, {n})")
    xs = expand_particles(x, n, sigmas[0], noise_form, generator, start_x0, streams)
    noise = generator if streams is None else streams.rows()
    paths = PathWeights(config.scoring, config.reward_floor, n_items, n, x.device)
    keep_all = torch.arange(n, device=x.device).expand(n_items, n)
    sigma_list = sigmas.tolist()
    for i in range(n_steps):
        sigma, sigma_next = sigma_list[i], sigma_list[i + 1]
        sigma_rows = sigmas[i].expand(xs.shape[0])
        use_local = local is not None and local.applies_at(i)
        if use_local:
            x0, reward_before, guided_reward = guided_denoise(ev, xs, sigma_rows, items, local, guide_fn, noise_form)
        else:
            x0 = ev.denoise(xs, sigma_rows, items)
        step = dict(step=i, sigma=sigma, scores=None, weights=None, ess=None, temperature=None, resampled=False,
                    ancestors=None, counts=None)
        if i in resample_at:
            rewards = ev.score(weight_fn, x0).reshape(n_items, n)
            lam = temperature(config, i, n_steps)
            score = paths.path_score(rewards)
            log_w = resampling.normalized_log_weights(paths.update(rewards, lam))
            weights = log_w.exp()
            ess = resampling.ess_from_weights(weights)
            ancestors = resampling.resample_normalized(config.resampling, log_w, generator)
            done = torch.ones(n_items, dtype=torch.bool, device=x.device)
            if config.ess_threshold is not None and not math.isinf(lam):
                done = ess < config.ess_threshold * n  # balanced items keep their particles and carry the weights
                ancestors = torch.where(done[:, None], ancestors, keep_all)
            paths.resampled(ancestors, done)
            # one conversion to plain lists per kind (per-tensor conversions cost more than the resampling)
            floats = to_list(torch.stack([rewards.double(), weights, score]))
            ints = torch.stack([ancestors, resampling.counts_from_ancestors(ancestors, n)]).tolist()
            step.update(scores=floats[0], weights=floats[1], ess=ess, temperature=lam, resampled=True,
                        ancestors=ints[0], counts=ints[1], path_scores=floats[2], resampled_items=done.tolist())
            rows = ancestor_rows(ancestors)
            xs, x0 = gather_particles(xs, ancestors, rows), gather_particles(x0, ancestors, rows)
            if use_local:   # either may be None (no gradient step; report_gain off)
                reward_before, guided_reward = (None if r is None else gather_particles(r, ancestors, rows)
                                                for r in (reward_before, guided_reward))
        x_before = xs
        xs, x0, reward_after = advance(ev, xs, x0, sigma, sigma_next, items, noise, noise_form, eta,
                                       local if use_local else None, guide_fn)
        step["nfe"] = ev.nfe
        trace.emit("step", **step)
        if use_local:
            reward_after = guided_reward if reward_after is None else reward_after  # no recurrence at this level
            trace.emit("local", step=i, sigma=sigma,
                       reward_before=None if reward_before is None else reward_before.reshape(n_items, n),
                       reward_after=None if reward_after is None else reward_after.reshape(n_items, n),
                       langevin_steps=local.steps * (local.recur_steps + 1), nfe=ev.nfe, grad_evals=ev.grad_evals)
        if callback is not None:
            latest = paths.last_reward
            best = (latest.argmax(1) if latest is not None else torch.zeros(n_items, dtype=torch.long,
                                                                           device=x.device))
            pick = torch.arange(n_items, device=x.device) * n + best
            # k-diffusion's convention: x is the state at σ_i that the step's x0 was predicted from
            callback({"i": i, "denoised": x0[pick], "x": x_before[pick], "sigma": sigmas[i], "sigma_hat": sigmas[i]})

    return finish(trace, ev, xs, n_items, n, final_fn, config, n_steps, generator, paths)


def _baseline(config, *args, local=None, select_for="final", **kwargs) -> torch.Tensor:
    """SoP (search_core/sop.py) or a beam (DSearch, DSearch-R, seed pruning: search_core/beam.py); each steps as its
    source does (SoP: DDIM eta 0; the beam: the config's eta), so ``eta`` does not apply."""
    if local is not None:
        raise ValueError(f"local search cannot be attached to the {config.name!r} preset (it re-solves or branches "
                         f"paths on its own); use a BFS preset (bfs, fk, das, ...) or DFS with local search")
    if select_for not in SELECT_FOR:
        raise ValueError(f"select_for={select_for!r}; use 'final' or 'resample_and_final'")
    if isinstance(config, SoPConfig):
        from .sop import sample_sop
        return sample_sop(*args, config=config, select_for=select_for, **kwargs)
    from .beam import sample_beam
    return sample_beam(*args, config=config, select_for=select_for, **kwargs)


def warn_if_deterministic(eta: float, n: int, resamples: bool) -> None:
    """Resampled copies of a particle only diverge through the step's noise: with eta = 0 they never do."""
    if eta == 0 and n > 1 and resamples:
        log.warning("eta = 0 (deterministic DDIM) with resampling: resampled copies of a particle never diverge, so "
                    "the search ends with few distinct samples; resampling needs a stochastic step (eta > 0, "
                    "e.g. 1)")


def finish(trace: Trace, ev: Evaluator, xs: torch.Tensor, n_items: int, n: int, final_fn, config: BFSConfig,
           n_steps: int, generator: torch.Generator, paths: PathWeights) -> torch.Tensor:
    """Score the final particles with the selecting verifier, pick one per item, fill the trace, emit ``final``.

    Final log-weight: the carried weights plus λ_T·path score ("score"), or λ·r_T minus the potentials applied
    ("corrected": FK's last step; the draw then targets p0·exp(λ·r)). ``final_ess_threshold``: multinomial
    resampling first when ESS < threshold·N (the paper's last step); the pick is among the survivors.
    ``final_pick``: "best" (highest reward) or "sample" (a draw ∝ the final weight)."""
    rewards = ev.score(final_fn, xs, "select_fn" if final_fn is not None else "score_fn").reshape(n_items, n)
    order = torch.argsort(rewards, dim=1, descending=True, stable=True)
    lam_last = temperature(config, n_steps - 1, n_steps)
    corrected = config.final_weight == "corrected"
    sample = config.final_pick == "sample" and (corrected or not math.isinf(lam_last))
    final = dict(resampled=None, ess=None, counts=None)
    survivors = torch.ones(n_items, n, dtype=torch.bool, device=xs.device)
    if sample or config.final_ess_threshold is not None:
        log_w = resampling.normalized_log_weights(paths.final(rewards, lam_last, config.lam, corrected))
        if config.final_ess_threshold is not None:
            ess = resampling.ess_from_weights(log_w.exp())
            done = ess < config.final_ess_threshold * n
            counts = resampling.counts_from_ancestors(resampling.resample_normalized("multinomial", log_w,
                                                                                     generator), n)
            survivors = torch.where(done[:, None], counts > 0, survivors)
            # a resampled item: the children are the population; a uniform child is a draw ∝ the weights
            log_w = torch.where(done[:, None], torch.log(counts.to(torch.float64)), log_w)
            final.update(resampled=done.tolist(), ess=ess, counts=torch.where(done[:, None], counts, 1).tolist())
        if sample:
            selected = resampling.multinomial(log_w, generator)[:, 0]
    if not sample:
        selected = torch.where(survivors, rewards.to(torch.float64), -math.inf).argmax(1)
    particles = item_view(xs, n_items)
    samples = particles[torch.arange(n_items, device=xs.device), selected]
    trace.samples, trace.particles, trace.rewards, trace.order = samples, particles, rewards, order
    trace.selected = selected
    trace.nfe, trace.nfe_per_item = ev.nfe, ev.nfe_per_item.tolist()
    trace.grad_evals, trace.denoiser_grad_evals, trace.score_evals = (ev.grad_evals, ev.denoiser_grad_evals,
                                                                      ev.score_evals)
    trace.emit("final", rewards=rewards, order=order, selected=selected, nfe=ev.nfe, nfe_per_item=trace.nfe_per_item,
               grad_evals=ev.grad_evals, **final)
    return samples
