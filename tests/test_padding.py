"""The temporal padding rule: SAME output length, end-heavy split, and agreement with a real conv."""
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from inflate.padding import causal_padding, pad_time, same_output_length, same_padding

lengths, kernels, strides, dilations = st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3)


@given(lengths, kernels, strides, dilations)
def test_same_padding_gives_ceil_length(t, k, s, d):
    front, back = same_padding(t, k, s, d)
    assert 0 <= front <= back <= front + 1
    x = torch.zeros(1, 1, t + front + back)
    y = F.conv1d(x, torch.zeros(1, 1, k), stride=s, dilation=d)
    assert y.shape[-1] == same_output_length(t, s) == -(-t // s)


@given(lengths, kernels, strides, dilations)
def test_causal_padding_same_length_all_in_front(t, k, s, d):
    front, back = causal_padding(t, k, s, d)
    assert back == 0
    y = F.conv1d(torch.zeros(1, 1, t + front), torch.zeros(1, 1, k), stride=s, dilation=d)
    assert y.shape[-1] == same_output_length(t, s)
    # output i's window ends at padded index i*s + span - 1, which is input frame i*s: never later
    assert all(i * s + (k - 1) * d - front == i * s for i in range(y.shape[-1]))


@given(st.integers(1, 6), st.integers(0, 4), st.integers(0, 4))
def test_replicate_padding_copies_edge_frames(t, front, back):
    x = torch.randn(2, 3, t, 2, 2)
    y = pad_time(x, front, back, "replicate")
    assert y.shape[2] == t + front + back
    assert torch.equal(y[:, :, :front], x[:, :, :1].expand(-1, -1, front, -1, -1))
    assert torch.equal(y[:, :, front + t:], x[:, :, -1:].expand(-1, -1, back, -1, -1))
    assert torch.equal(pad_time(x, front, back, "zeros")[:, :, front:front + t], x)
