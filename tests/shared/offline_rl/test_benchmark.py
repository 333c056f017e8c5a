from shared.offline_rl.benchmark import bare_step_rate, evaluator_rate, generation_rate


def test_benchmark_functions_return_positive_rates():
    assert bare_step_rate("reach-v3", 50) > 0
    assert generation_rate(["reach-v3"], 2, 5, workers=1) > 0
    assert generation_rate(["reach-v3"], 2, 5, workers=1, write=True) > 0
    assert evaluator_rate(["reach-v3"], [0, 1], 5, workers=1) > 0
