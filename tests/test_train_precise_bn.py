"""Precise BatchNorm (zoo.train.precise_bn) leaves every layer's train/eval mode as it found it: frozen
BatchNorm stays in eval mode (issue 19, bug 9)."""
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
