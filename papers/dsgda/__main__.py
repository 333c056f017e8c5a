"""python -m papers.dsgda {data,train,reproduce} --config {smoke,small,paper} [key=value ...]

Multi-process: torchrun --nproc_per_node=<clients> -m papers.dsgda train sgda.backend=distributed
"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.dsgda.config import DSGDAConfig
from shared.cli import Context, run_cli


def data(cfg: DSGDAConfig, ctx: Context) -> None:
    """Generate the configured problem's pool and describe it, the split and W."""
    from papers.dsgda import data as client_data
    from papers.dsgda.experiment import problem_for
    from papers.dsgda.topology import describe, mixing_matrix
    from shared.seeding import torch_generator

    s = cfg.sgda
    problem, pool = problem_for(cfg, cfg.problem.setting)
    print(f"{cfg.problem.setting}: x ∈ R^{problem.dim_x}, y ∈ R^{problem.dim_y}; pool {tuple(pool.z.shape)}, "
          f"test {tuple(pool.z_test.shape)}, {pool.num_labels} labels")
    idx, _ = client_data.client_split(pool.label, pool.num_labels, s.clients, s.samples_per_client,
                                      cfg.data.split, cfg.data.skew_alpha, torch_generator(cfg.seed))
    shares = client_data.label_shares(pool.label, idx, pool.num_labels)
    print(f"{cfg.data.split} split over {s.clients} clients × {s.samples_per_client}: label-0 share per "
          "client " + " ".join(f"{v:.2f}" for v in shares[:, 0].tolist()))
    W = describe(mixing_matrix(s.topology, s.clients, s.graph, s.matrix_path))
    print(f"W ({s.topology}): λ = {W['lambda']:.4f}, spectral gap = {W['spectral_gap']:.4f}, "
          f"max degree {W['max_degree']}")


def train(cfg: DSGDAConfig, ctx: Context) -> None:
    from papers.dsgda.train import train as train_run

    summary = train_run(cfg, ctx)
    if not summary:  # a non-main process under torchrun
        return
    final = ", ".join(f"{k}={v:.4g}" for k, v in summary["final"].items())
    print(f"{summary['run_dir']}: T={summary['T'][-1]} {final}; spectral gap "
          f"{summary['W']['spectral_gap']:.4f}")


def reproduce(cfg: DSGDAConfig, ctx: Context) -> None:
    from papers.dsgda.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("dsgda", DSGDAConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
