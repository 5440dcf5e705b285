"""The GMM benchmark's focused studies: BFS ablation, DFS on mixed instances, local search beyond the support,
dual verifiers against reward hacking, convergence to the tilted target."""
from __future__ import annotations

import math

import torch

from search_core import LangevinConfig, get_preset

from .methods import LOCAL, bfs_config, dfs_config, run, run_rows
from .scenarios import (N_STEPS, Scenario, easy_and_hard_instances, energy_distance, mean_and_sem, mode_instances,
                        second_opinion, spiked_guide)

ABLATION = {
    "resampling": ["none", "multinomial", "stratified", "systematic", "residual", "ssp", "top_half", "greedy"],
    "scoring": ["current", "difference", "max"],
    "temperature": ["increase_paper", "increase_exp", "increase_linear", "constant", "inf"],
}


def ablation(scenario: Scenario, n: int, n_items: int, seeds: list[int]) -> list[dict]:
    """One axis of the paper's BFS varied at a time around BFS(increase, max, SSP)."""
    rows = []
    for axis, values in ABLATION.items():
        for value in values:
            cfg = bfs_config("bfs", scenario.lam, **{axis: value})
            r = run_rows("bfs", scenario, n, n_items, seeds, config=cfg)
            r.update(method=f"bfs[{axis}={value}]", axis=axis, value=value)
            rows.append(r)
    return rows


def dfs_mixed(n_items: int, seeds: list[int], budgets=(2, 4, 8, 16), deltas=(0.3, 0.5, 0.7, 0.8)) -> dict:
    """Easy and hard instances pooled: BFS spends N·T on each; DFS (one δ for all) spends what each needs."""
    instances = easy_and_hard_instances()
    def pooled(method, **kw):
        rewards, nfe, per = [], 0.0, {}
        for name, (gmm, reward) in instances.items():
            sc = Scenario(name, gmm, reward, reward, 5.0, torch.zeros(1, 2), "")
            outs, n_sum = [], 0
            for seed in seeds:
                out, res, _ = run(method, sc, kw["n"], n_items, seed, **{k: v for k, v in kw.items() if k != "n"})
                outs.append(reward(out))
                n_sum += res.nfe
            r = torch.cat(outs)
            per[name] = {"reward": float(r.mean()), "nfe": n_sum / (n_items * len(seeds))}
            rewards.append(r)
            nfe += per[name]["nfe"] / len(instances)
        mean, sem = mean_and_sem(torch.cat(rewards))
        return {"reward_mean": mean, "reward_sem": sem, "nfe": nfe, "per_instance": per}
    bfs = {n: pooled("bfs", n=n) for n in budgets}
    dfs = {d: pooled("dfs", n=max(budgets), delta=d) for d in deltas}
    return {"bfs": bfs, "dfs": dfs, "nfe_saving_at_equal_reward": nfe_savings(bfs, dfs)}


def nfe_savings(bfs: dict, dfs: dict) -> dict:
    """Per DFS setting: 1 - NFE_DFS / NFE that BFS needs for the same reward (log-NFE interpolation of BFS's
    reward-vs-NFE curve); None where DFS's reward is outside BFS's measured range."""
    curve = sorted((v["nfe"], v["reward_mean"]) for v in bfs.values())
    out = {}
    for key, v in dfs.items():
        out[key] = None
        for (n0, r0), (n1, r1) in zip(curve, curve[1:]):
            if r0 <= v["reward_mean"] <= r1 and r1 > r0:
                frac = (v["reward_mean"] - r0) / (r1 - r0)
                needed = math.exp(math.log(n0) + frac * (math.log(n1) - math.log(n0)))
                out[key] = 1.0 - v["nfe"] / needed
    return out


def beyond_support(scenario: Scenario, n: int, n_items: int, seeds: list[int]) -> dict:
    """Share of samples whose reward exceeds every one of 200k base samples (outside the base support)."""
    base = scenario.mixture.sample(200000, torch.Generator().manual_seed(99))
    ceiling = float(scenario.reward(base).max())
    out = {"base_max_reward": ceiling}
    for method in ("bon", "bfs", "local", "bfs+local"):
        samples = torch.cat([run(method, scenario, n, n_items, s)[0] for s in seeds])
        r = scenario.reward(samples)
        out[method] = {"reward_mean": float(r.mean()), "share_beyond": float((r > ceiling).float().mean()),
                       "max_reward": float(r.max())}
    return out


def dual_verifiers(scenario: Scenario, n: int, n_items: int, seeds: list[int]) -> dict:
    """Local search guided by a verifier with a spurious spike; the final pick by the same verifier or another."""
    guide = spiked_guide(scenario)
    strong = LangevinConfig(grad_mode="x0", mu=0.15, steps=2, recur_steps=1, start_step=N_STEPS // 2)
    out = {}
    for method in ("local", "bfs+local"):
        for label, select in (("single", guide), ("dual", second_opinion())):
            samples = torch.cat([run(method, scenario, n, n_items, s, guide_fn=guide, select_fn=select,
                                     local=strong)[0] for s in seeds])
            true = scenario.reward(samples)
            on_spike = ((samples - guide.center).norm(dim=1) < guide.width).float().mean()
            out[f"{method}/{label}"] = {"true_reward": float(true.mean()), "true_reward_sem": mean_and_sem(true)[1],
                                        "guide_reward": float(guide(samples).mean()), "on_spike": float(on_spike)}
    return out


def convergence(scenario: Scenario, sizes, n_items: int, seeds: list[int]) -> dict:
    """Energy distance to the tilted target and the rare mode's share as N grows (final draw ∝ the final weight)."""
    sample = dict(final_pick="sample", final_weight="corrected")
    configs = {"smc(constant,difference,ssp)": bfs_config("bfs", scenario.lam, temperature="constant",
                                                          scoring="difference", **sample),
               "fk": bfs_config("fk", scenario.lam), "fk(no correction)": bfs_config("fk", scenario.lam,
                                                                                   final_weight="score"),
               "das": bfs_config("das", scenario.lam),
               "bfs+ess0.5(corrected draw)": bfs_config("bfs", scenario.lam, ess_threshold=0.5, **sample),
               "bfs(preset: best pick)": bfs_config("bfs", scenario.lam)}
    out = {"target_rare_share": _rare_share(scenario.target)}
    for name, cfg in configs.items():
        out[name] = {}
        for n in sizes:
            samples = torch.cat([run("bfs", scenario, n, n_items, s, config=cfg)[0] for s in seeds])
            out[name][n] = {"distance": energy_distance(samples[:2048], scenario.target),
                            "rare_share": _rare_share(samples)}
    return out


def _rare_share(samples: torch.Tensor) -> float:
    return float((samples[:, 1] > 1.5).float().mean())


DFS_VARIANTS = {  # label: DFSConfig settings; "log" = the paper's thresholds: log r against δ_t = log δ / ᾱ_t
    "ΔT=6, checks from 12": dict(backtrack_steps=6, backtrack_growth=1.0, check_from=12),
    "ΔT=6 escalating, checks from 12": dict(backtrack_steps=6, backtrack_growth=2.0, check_from=12),
    "ΔT=4, checks from 12": dict(backtrack_steps=4, backtrack_growth=1.0, check_from=12),
    "ΔT=6, checks from 4": dict(backtrack_steps=6, backtrack_growth=1.0, check_from=4),
    "ΔT=6 escalating, checks from 4": dict(backtrack_steps=6, backtrack_growth=2.0, check_from=4),
    "paper δ_t, ΔT=6, checks from 4": dict(backtrack_steps=6, backtrack_growth=1.0, check_from=4, log=True),
    "paper δ_t, ΔT=6 escalating, from 4": dict(backtrack_steps=6, backtrack_growth=2.0, check_from=4, log=True),
}


def dfs_study(n_items: int, seeds: list[int], n: int = 8, delta: float = 0.5) -> dict:
    """Where DFS wins and loses against BFS at equal NFE: success (reward >= δ) per instance, DFS variants."""
    out = {}
    for name, (gmm, reward) in mode_instances().items():
        plain = Scenario(name, gmm, reward, reward, 5.0, torch.zeros(1, 2), "")
        logged = Scenario(name, gmm, reward, lambda z: torch.log(reward(z).clamp_min(1e-12)), 5.0, plain.target, "")
        def pooled(method, k, log=False, **kw):
            samples, nfe = [], 0
            for seed in seeds:
                o, res, _ = run(method, logged if log else plain, k, n_items, seed, **kw)
                samples.append(o)
                nfe += res.nfe
            r = reward(torch.cat(samples))
            return {"success": float((r >= delta).float().mean()), "reward": float(r.mean()),
                    "nfe": nfe / (n_items * len(seeds))}
        row = {f"bfs N={k}": pooled("bfs", k) for k in (2, 4, n)}
        row[f"treeg N={n}"] = pooled("treeg", n)
        for label, settings in DFS_VARIANTS.items():
            settings = dict(settings)
            log = settings.pop("log", False)
            cfg = dfs_config(n, math.log(delta), delta_schedule="alpha_scaled", **settings) if log else \
                dfs_config(n, delta, **settings)
            row[f"dfs {label}"] = pooled("dfs", n, log=log, config=cfg)
        out[name] = row
    return out
