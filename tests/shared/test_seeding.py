import random

import gymnasium as gym
import numpy as np
import torch

from shared.seeding import rng_state, seed_env, seed_everything, set_rng_state


def _draws():
    return (random.random(), float(np.random.rand()), float(torch.rand(1)))


def test_same_seed_same_draws_and_different_seed_different_draws():
    seed_everything(3)
    a = _draws()
    seed_everything(3)
    assert _draws() == a
    seed_everything(4)
    assert _draws() != a


def test_rng_state_round_trip_continues_every_stream_exactly():
    seed_everything(0)
    _draws()
    state = rng_state()
    expected = _draws()
    seed_everything(99)
    set_rng_state(state)
    assert _draws() == expected


def test_env_and_its_spaces_are_seeded():
    def rollout():
        env = gym.make("CartPole-v1")
        obs = seed_env(env, 5)
        actions = [int(env.action_space.sample()) for _ in range(10)]
        return obs.tolist(), actions

    assert rollout() == rollout()
