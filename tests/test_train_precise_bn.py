"""Precise BatchNorm (zoo.train.precise_bn) leaves every layer's train/eval mode as it found it: frozen
BatchNorm stays in eval mode (issue 19, bug 9)."""
import copy

import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from zoo.train.build import frozen_norms, set_train_mode
from zoo.train.precise_bn import recompute_bn_stats


def tiny_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(2, 3, 1), nn.BatchNorm3d(3), nn.ReLU(), nn.Dropout(0.5), nn.Conv3d(3, 3, 1),
                         nn.BatchNorm3d(3))


def batches(n: int = 3):
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(2, 2, 2, 4, 4, generator=g) * 2 + 1} for _ in range(n)]


def test_bug9_frozen_batchnorm_stays_in_eval_mode_after_precise_bn():
    torch.manual_seed(0)
    model = tiny_net()
    frozen = frozen_norms(model, freeze_bn=True, fixed=False)[:1]        # the first BatchNorm is frozen
    set_train_mode(model, True, frozen)                                   # what the loop does each epoch
    stats = model[1].running_mean.clone(), model[1].running_var.clone()
    assert recompute_bn_stats(model, batches(), "x", num_batches=2, exclude=frozen) == 2
    assert model.training and model[5].training
    assert not model[1].training, "precise_bn switched a frozen BatchNorm back to train mode"
    assert torch.equal(model[1].running_mean, stats[0]) and torch.equal(model[1].running_var, stats[1])


@given(modes=st.lists(st.booleans(), min_size=7, max_size=7), used=st.integers(0, 3))
def test_every_modules_mode_is_restored(modes, used):
    model = tiny_net()
    for m, training in zip([model, *model], modes):                      # any mix, set module by module
        m.training = training
    recompute_bn_stats(model, batches(), "x", num_batches=used)
    assert [m.training for m in [model, *model]] == modes


# ---------------------------------------------------------------- the statistics and the layers it recomputes

class RunningMeanOnly(nn.Module):
    """Running statistics but no momentum: not a BatchNorm (e.g. a feature normaliser); never touched."""

    def __init__(self):
        super().__init__()
        self.register_buffer("running_mean", torch.full((3,), 7.0))
        self.register_buffer("running_var", torch.full((3,), 7.0))

    def forward(self, x):
        return x


class MeanWithMomentum(nn.Module):
    """An exponential average with a momentum but no running variance: not a BatchNorm either."""

    def __init__(self):
        super().__init__()
        self.momentum = 0.5
        self.register_buffer("running_mean", torch.full((3,), 7.0))

    def forward(self, x):
        return x


def test_batchnorm_layers_are_torchs_and_i3ds_that_track_statistics():
    from zoo.models.i3d import BatchNormNoScale
    from zoo.train.precise_bn import batchnorm_layers
    layers = [nn.Conv3d(2, 3, 1), nn.BatchNorm3d(3), BatchNormNoScale(3), nn.BatchNorm3d(3, track_running_stats=False),
              RunningMeanOnly(), MeanWithMomentum(), nn.GroupNorm(1, 3), nn.BatchNorm2d(3)]
    model = nn.Sequential(*layers)
    assert batchnorm_layers(model) == [layers[1], layers[2], layers[7]]


@pytest.mark.parametrize("num_batches", [1, 3])
def test_statistics_are_the_mean_of_batch_means_and_variances_for_both_kinds(num_batches):
    """PySlowFast's precise BN: every batch weighs the same, in torch's BatchNorm3d (counted by
    num_batches_tracked) and in I3D's BatchNormNoScale (no counter: a cumulative momentum 1/(n+1))."""
    from zoo.models.i3d import BatchNormNoScale
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(2, 3, 1), BatchNormNoScale(3), nn.Conv3d(3, 3, 1), nn.BatchNorm3d(3),
                          RunningMeanOnly())
    data = batches(4)
    model.eval()
    assert recompute_bn_stats(model, data, lambda b: b["x"], num_batches=num_batches) == num_batches
    with torch.no_grad():
        seen = [model[0](b["x"]) for b in data[:num_batches]]         # what the first BatchNorm saw
        as_trained = copy.deepcopy(model).train()                      # the first normalises by batch statistics
        after = [as_trained[2](as_trained[1](x)) for x in seen]        # what the second BatchNorm saw
    for bn, xs in ((model[1], seen), (model[3], after)):
        torch.testing.assert_close(bn.running_mean, torch.stack([x.mean((0, 2, 3, 4)) for x in xs]).mean(0))
        torch.testing.assert_close(bn.running_var, torch.stack([x.var((0, 2, 3, 4)) for x in xs]).mean(0))
    assert model[1].momentum == 0.001 and model[3].momentum == 0.1 and not model.training
    assert torch.equal(model[4].running_mean, torch.full((3,), 7.0))


def test_batches_without_an_input_are_skipped_and_none_used_restores_the_statistics():
    from zoo.models.i3d import BatchNormNoScale
    model = nn.Sequential(nn.Conv3d(2, 3, 1), BatchNormNoScale(3))
    before = model[1].running_mean.clone(), model[1].running_var.clone()
    assert recompute_bn_stats(model, [{"x": None}] * 3, "x", num_batches=2) == 0
    assert torch.equal(model[1].running_mean, before[0]) and torch.equal(model[1].running_var, before[1])
    assert model[1].momentum == 0.001
    data = [{"x": None}, *batches(2)]
    assert recompute_bn_stats(model, data, "x", num_batches=5) == 2
    with torch.no_grad():
        x = model[0](data[1]["x"])
    torch.testing.assert_close(model[1].running_mean, (x.mean((0, 2, 3, 4)) + model[0](data[2]["x"]).mean(
        (0, 2, 3, 4))) / 2)
