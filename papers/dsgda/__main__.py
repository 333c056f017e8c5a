"""python -m papers.dsgda {data,train,eval,reproduce,config} --config {smoke,small,paper} [key=value ...]

Multi-process: torchrun --nproc_per_node=<processes> -m papers.dsgda train sgda.backend=distributed
(any number of processes up to sgda.clients; each runs a contiguous block of the clients).
"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.dsgda.config import DSGDAConfig
from shared.cli import Context, run_cli


def data(cfg: DSGDAConfig, ctx: Context) -> None:
    """Generate the configured problem's pool and describe it, the client split and W.

    Prints the pool and test-set shapes of problem.setting, each client's label-0 share under
    data.split, and the mixing matrix's λ, spectral gap and maximum degree."""
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
    """Run one configuration (sgda.*) on problem.setting with sweep.pairs neighbouring pairs.

    Writes summary.json (every measure at every horizon), metrics.jsonl and trace.pt into
    runs/dsgda/<config>/train-<setting>/seed<k>-<stamp>/. sgda.backend=simulation runs every
    client in this process; sgda.backend=distributed runs under torchrun, each process a
    contiguous block of the clients (gloo on CPU, NCCL on GPU, at most one process per GPU).
    resume=latest reuses a finished run of the same config."""
    from papers.dsgda.train import train as train_run

    summary = train_run(cfg, ctx)
    if not summary:  # a non-main process under torchrun
        return
    final = ", ".join(f"{k}={v:.4g}" for k, v in summary["final"].items())
    print(f"{summary['run_dir']}: T={summary['T'][-1]} {final}; spectral gap "
          f"{summary['W']['spectral_gap']:.4f}")


def evaluate(cfg: DSGDAConfig, ctx: Context) -> None:
    """Re-measure a finished train run from its saved iterates and print its final measures.

    By default the newest finished run of this config and problem.setting; eval_run=<run dir>
    picks another. The run's own config rebuilds its datasets, the measures are recomputed
    from trace.pt and printed beside those summary.json recorded; eval-<stamp>.json is
    written into the run."""
    from papers.dsgda.evaluate import evaluate_run

    evaluate_run(cfg, ctx)


def reproduce(cfg: DSGDAConfig, ctx: Context) -> None:
    """Run every sweep on every setting and seed; write results.json, RESULTS.md and plots.

    One run per (setting, seed), each one vectorised simulation per (m, n) shape, in
    sweep.processes worker processes; then the claims (schema 2), sweep and curve tables
    and 16 plots under runs/dsgda/<config>/reproduce/<stamp>/. resume=latest reuses
    finished (setting, seed) runs."""
    from papers.dsgda.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("dsgda", DSGDAConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
