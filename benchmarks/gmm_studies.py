"""The GMM benchmark's focused studies: BFS ablation, DFS on mixed instances, local search beyond the support,
dual verifiers against reward hacking, convergence to the tilted target."""
from __future__ import annotations

import math

import torch

from search_core import LangevinConfig

from .gmm_methods import LOCAL, bfs_config, run, run_rows
from .gmm_setup import N_STEPS, Scenario, easy_and_hard_instances, mean_and_sem, second_opinion, spiked_guide

ABLATION = {
    "resampling": ["none", "multinomial", "stratified", "systematic", "residual", "ssp", "top_half", "greedy"],
    "scoring": ["current", "difference", "max"],
    "temperature": ["increase_exp", "increase_linear", "constant", "inf"],
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
    """Energy distance to the tilted target as N grows (final pick: draw ∝ the last SMC weight)."""
    configs = {"bfs": bfs_config("bfs", scenario.lam, final_pick="sample"),
               "fk": bfs_config("fk", scenario.lam, final_pick="sample"),
               # the consistent SMC point of the design space: constant λ, difference (incremental) weights
               "smc(constant,difference,ssp)": bfs_config("bfs", scenario.lam, temperature="constant",
                                                          scoring="difference", final_pick="sample")}
    out = {}
    for name, cfg in configs.items():
        out[name] = {n: run_rows("bfs", scenario, n, n_items, seeds, config=cfg)["target_distance"] for n in sizes}
    out["local_config"] = LOCAL.to_dict()
    return out
