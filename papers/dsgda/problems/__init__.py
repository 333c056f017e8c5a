"""The min-max problems and their data, one module per problem:

| setting | module | what it is |
|---|---|---|
| cc, scsc | `auc.py` | SOLAM AUC maximisation: convex (empirically strongly convex once N ≥ d + 2) / SC-SC |
| plsc | `plsc.py` | group-DRO least squares: a convex quadratic, PL, strongly convex on the data span |
| ncnc, nonpl | `sinusoid.py` | Yang et al.'s two-sided-PL toy / a sinusoidal variant that is PL on neither side |
| bilinear | `bilinear.py` | a stochastic bilinear game on boxes: C-C with no curvature |

`base.py` holds the interface (sufficient statistics, exact inner problems, weak risks) and the
shared numerical helpers.
"""

from __future__ import annotations

from papers.dsgda.config import DataConfig, ProblemConfig
from papers.dsgda.problems.auc import BREAST_CANCER_ROWS, AUCProblem, make_auc
from papers.dsgda.problems.base import (
    Pool,
    Problem,
    _auc_from_scores,
    _golden_max,
    _maximise_1d,
    _min_quadratic,
    group_mean,
)
from papers.dsgda.problems.bilinear import BilinearProblem, make_bilinear
from papers.dsgda.problems.plsc import PLSCProblem, make_plsc
from papers.dsgda.problems.sinusoid import NONPL, YANG, NCNCProblem, SinusoidProblem, make_sinusoid
from shared import UserError

__all__ = ["AUCProblem", "BREAST_CANCER_ROWS", "BilinearProblem", "NCNCProblem", "NONPL", "PLSCProblem",
           "Pool", "Problem", "SinusoidProblem", "YANG", "_auc_from_scores", "_golden_max", "_maximise_1d",
           "_min_quadratic", "group_mean", "make_problem"]


def make_problem(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
    """Generate the pool (deterministic in data.data_seed) and the problem for problem.setting.

    Features are standardised with the pool's mean and std. `data.pool_samples` samples go to
    `z` (the clients' data, their replacements and the population: D is uniform on the pool)
    and `data.test_samples` more to `z_test` (task scores only).
    - cc/scsc: dataset "auto"/"synthetic" = make_classification (data.features features, half
      informative, class_sep 0.4, 5% label noise, P(+1) ≈ 0.3); "breast_cancer" = scikit-learn's
      bundled 569 × 30 set, rows shuffled by data_seed (pool + test ≤ 569). label = class.
    - plsc: rank-plsc_rank features from make_regression latents; group = sign of the first latent.
    - ncnc/nonpl: (u, v) = make_classification features scaled by ncnc_scale; label = class.
    - bilinear: a two-component mixture of games (bilinear.py); label = component.
    """
    setting, dataset = problem.setting, data.dataset
    if data.pool_samples < 2 or data.test_samples < 1:
        raise UserError(f"need data.pool_samples >= 2 and data.test_samples >= 1, got "
                        f"{data.pool_samples} and {data.test_samples}")
    if problem.y_radius <= 0:
        raise UserError(f"problem.y_radius must be > 0, got {problem.y_radius}")
    if setting in ("cc", "scsc"):
        if dataset not in ("auto", "synthetic", "breast_cancer"):
            raise UserError(f"data.dataset '{dataset}' is not available for {setting}")
        if setting == "scsc" and problem.l2 <= 0:
            raise UserError(f"scsc needs problem.l2 > 0, got {problem.l2}")
        if dataset != "breast_cancer" and data.features < 1:
            raise UserError(f"data.features must be >= 1, got {data.features}")
        return make_auc(problem, data)
    if dataset not in ("auto", "synthetic"):
        raise UserError(f"data.dataset '{dataset}' is not available for {setting} (use auto)")
    if setting == "plsc":
        if problem.plsc_mu <= 0:
            raise UserError(f"problem.plsc_mu must be > 0, got {problem.plsc_mu}")
        return make_plsc(problem, data)
    if setting in ("ncnc", "nonpl"):
        return make_sinusoid(problem, data)
    if setting == "bilinear":
        return make_bilinear(problem, data)
    raise UserError(f"unknown problem.setting '{setting}'")
