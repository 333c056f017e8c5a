"""Test environment: offline, no wandb unless a test asks for it, no progress bars."""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
os.environ["REPRO_PROGRESS"] = "0"
os.environ["MPLBACKEND"] = "Agg"

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on two cores: one intra-op thread each, so
    # they do not oversubscribe the cores (tests that need another count set it themselves).
    os.environ.setdefault("OMP_NUM_THREADS", "1")


try:
    import xdist
except ImportError:  # plain `pytest` without the dev extra: one process, no scheduler hook
    xdist = None

if xdist is not None:
    def pytest_xdist_make_scheduler(config, log):
        """Under `pytest -n N` (`make test`): one work unit per test folder (a paper, a
        substrate) and per file directly under tests/ or tests/shared/, so a folder's session
        fixtures (smoke data, one reproduce run) are built once, in one worker. (xdist's own
        `--dist loadgroup` marks do not reach the scheduler with pytest 9.2.)"""
        from xdist.scheduler import LoadScopeScheduling

        class FolderScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                path = nodeid.split("::", 1)[0]
                parts = Path(path).parts  # tests/papers/<slug>/test_x.py
                return str(Path(*parts[:-1])) if len(parts) > 3 else path

        return FolderScheduling(config, log)


@pytest.fixture
def repo_root() -> Path:
    return REPO


def run_main(slug: str, argv: list[str]) -> tuple[int, str, str]:
    """Run `python -m papers.<slug> <argv>` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import importlib
    import io

    main = importlib.import_module(f"papers.{slug}.__main__").main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own exits
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    """`cli(slug, *argv)` runs a paper's command line in-process: (code, stdout, stderr)."""
    return lambda slug, *argv: run_main(slug, list(argv))


@pytest.fixture
def one_line_error(tmp_path):
    """Run `python -m papers.<slug> <command> --config smoke <args>` in-process; assert it exits
    2 with a single `error:` line and return that line."""

    def run(slug: str, command: str, args: list[str]) -> str:
        extra = [f"{key}={tmp_path}/{key}" for key in ("runs_dir", "data_dir")
                 if not any(a.startswith(f"{key}=") for a in args)]
        code, _, err = run_main(slug, [command, "--config", "smoke", *extra, *args])
        assert code == 2, err[-1500:]
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), err
        return lines[0]

    return run


def _clean_stderr(text: str) -> str:
    """Drop progress-bar lines; keep a worker's own error (first lines) and the tail."""
    lines = [line for line in text.replace("\r", "\n").splitlines()
             if line.strip() and "it/s]" not in line and "s/it]" not in line]
    return "\n".join(lines[:40] + (["..."] + lines[-15:] if len(lines) > 55 else lines[40:]))


@pytest.fixture
def launch(repo_root):
    """`launch(slug, argv, nproc=2, launcher="torchrun"|"accelerate"|"python")` runs
    `python -m papers.<slug> <argv>` under torchrun (gloo, CPU) or accelerate launch with
    `nproc` processes; asserts exit 0 and returns the CompletedProcess."""
    import subprocess
    import sys

    def run(slug: str, argv: list[str], nproc: int = 2, launcher: str = "torchrun",
            timeout: float = 300):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        if launcher == "torchrun":
            head = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", str(nproc)]
        elif launcher == "accelerate":
            # `--cpu --num_processes N` starts a single process (accelerate 1.16); --multi_gpu
            # with no visible GPU starts N gloo processes on CPU.
            env["CUDA_VISIBLE_DEVICES"] = ""
            head = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                    "--num_processes", str(nproc), "--num_machines", "1", "--mixed_precision", "no",
                    "--dynamo_backend", "no"]
        else:
            head = [sys.executable]
        proc = subprocess.run([*head, "-m", f"papers.{slug}", *argv], cwd=repo_root, env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, _clean_stderr(proc.stderr)
        return proc

    return run


def run_dirs(runs: Path, slug: str, config: str = "smoke") -> list[Path]:
    """Every run directory (`<method>/seed<k>-<stamp>`) of a paper's config under `runs`."""
    return sorted(p for p in (Path(runs) / slug / config).glob("*/seed*-*") if p.is_dir())


@pytest.fixture
def list_run_dirs():
    return run_dirs
