"""A fingerprint of a harmodt smoke reproduce, to check that a refactoring changes no bit.

    python -m papers.harmodt reproduce --config smoke runs_dir=/tmp/a data_dir=/tmp/a-data
    python tests/papers/harmodt/smoke_fingerprint.py /tmp/a [-v]

It hashes results.json's `methods` and the claims' measured values, and, for every run, its
summary.json (without paths), metrics.jsonl (without wall times) and every tensor of its
final checkpoint; so returns, losses, masks and weights are covered, not only the smoke's
success rates (all 0 at this scale). Float results depend on the CPU and the libraries:
compare fingerprints made on one machine.

Recorded for issue 15 (the Decision Transformer substrate moving into shared/offline_rl) on
the 2-core CI-like machine, torch 2.13.0+cpu, transformers 5.24.0: before the move (515b945,
twice) and after it, 822cff942e76cfcb08d78aa038e97f9ed251af71a721b35a313387d2d32156c7.
"""

import hashlib
import json
import sys
from pathlib import Path

from safetensors.numpy import load_file


def fingerprint(root: Path) -> dict[str, str]:
    smoke = root / "harmodt" / "smoke"
    results = json.loads(next((smoke / "reproduce").glob("*/results.json")).read_text())
    parts = {"methods": json.dumps(results["methods"], sort_keys=True),
             "claims": json.dumps([(c["claim"], c["ours"], c["verdict"]) for c in results["claims"]],
                                  sort_keys=True)}
    for run in sorted(smoke.glob("*/seed*")):
        summary = json.loads((run / "summary.json").read_text())
        summary.pop("run_dir")
        metrics = [{k: v for k, v in json.loads(line).items() if k != "time"}
                   for line in (run / "metrics.jsonl").read_text().splitlines()]
        final = sorted((run / "checkpoints").iterdir())[-1]
        tensors = {k: hashlib.sha256(v.tobytes()).hexdigest()
                   for f in sorted(final.glob("*.safetensors")) for k, v in sorted(load_file(str(f)).items())}
        parts[f"{run.parent.name}/{run.name.split('-')[0]}"] = json.dumps([summary, metrics, tensors],
                                                                          sort_keys=True)
    return {k: hashlib.sha256(v.encode()).hexdigest() for k, v in parts.items()}


if __name__ == "__main__":
    parts = fingerprint(Path(sys.argv[1]))
    if "-v" in sys.argv:
        for name in sorted(parts):
            print(name, parts[name][:16])
    total = hashlib.sha256("".join(f"{k}={parts[k]}\n" for k in sorted(parts)).encode())
    print("fingerprint", total.hexdigest(), len(parts), "parts")
