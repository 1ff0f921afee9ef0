from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from opsin.eventflow import layers
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.layers import (
    ConvGRUCell,
    ConvLayer,
    ConvLSTMCell,
    ConvRNN,
    DepthwiseSeparableConv2d,
    PreActBlock,
    SEBlock,
    SequenceWise,
    UnetRegressor,
    batch_to_time,
    time_to_batch,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_all_is_complete():
    assert len(set(layers.__all__)) == len(layers.__all__)
    for name in layers.__all__:
        assert hasattr(layers, name)


def test_time_to_batch_is_t_major_and_inverted_by_batch_to_time():
    x = torch.arange(3 * 2 * 5, dtype=torch.float32).view(3, 2, 5)
    x4, batch = time_to_batch(x)
    assert batch == 2
    assert x4.shape == (6, 5)
    for t in range(3):
        for b in range(2):
            assert torch.equal(x4[t * 2 + b], x[t, b])
    assert torch.equal(batch_to_time(x4, batch), x)


def test_sequence_wise_applies_the_module_to_every_bin():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 3, 5, 6)
    out = SequenceWise(conv)(x)
    assert out.shape == (2, 3, 4, 5, 6)
    for t in range(2):
        torch.testing.assert_close(out[t], conv(x[t]))


def test_depthwise_separable_structure_and_parameter_count():
    conv = DepthwiseSeparableConv2d(6, 16, 3, stride=2, padding=1, depth_multiplier=4)
    assert conv.depthwise.groups == 6
    assert conv.depthwise.out_channels == 24
    # depthwise 24 * 9 + 24, pointwise 24 * 16 + 16
    assert n_params(conv) == 24 * 9 + 24 + 24 * 16 + 16
    assert conv(torch.zeros(1, 6, 8, 10)).shape == (1, 16, 4, 5)
    with pytest.raises(ConfigError):
        DepthwiseSeparableConv2d(4, 4, depth_multiplier=0)


def test_conv_layer_is_conv_then_norm_then_activation():
    torch.manual_seed(0)
    layer = ConvLayer(3, 5, norm="BatchNorm2d", activation="LeakyReLU").eval()
    with torch.no_grad():
        layer.norm.running_mean.uniform_(-1, 1)
        layer.norm.running_var.uniform_(0.5, 2)
        layer.norm.weight.uniform_(0.5, 2)
        layer.norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 6, 7)
    bn = layer.norm
    z = F.conv2d(x, layer.conv.weight, layer.conv.bias, padding=1)
    z = (z - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
    z = z * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x), F.leaky_relu(z, 0.01))
    plain = ConvLayer(3, 5, norm="none", activation="Identity")
    assert n_params(plain) == 3 * 5 * 9 + 5
    separable = ConvLayer(8, 4, separable=True)
    assert n_params(separable) == (8 * 9 + 8) + (8 * 4 + 4) + 2 * 4


@pytest.mark.parametrize(("kwargs", "word"), [({"norm": "LayerNorm"}, "norm"), ({"activation": "GELU"}, "activation")])
def test_conv_layer_rejects_unknown_names(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        ConvLayer(3, 4, **kwargs)


def test_se_block_matches_its_formula():
    torch.manual_seed(1)
    block = SEBlock(4, 8, stride=2).eval()
    x = torch.randn(2, 4, 8, 10)

    def bn(z, m):
        return F.batch_norm(z, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    y = F.relu(bn(F.conv2d(x, block.conv1.weight, stride=2, padding=1), block.bn1))
    y = F.relu(bn(F.conv2d(y, block.conv2.weight, padding=1), block.bn2))
    pooled = y.mean(dim=(2, 3), keepdim=True)
    w = torch.sigmoid(
        F.conv2d(
            F.relu(F.conv2d(pooled, block.squeeze.weight, block.squeeze.bias)), block.excite.weight, block.excite.bias
        )
    )
    expected = y * w + F.conv2d(x, block.shortcut.weight, stride=2)
    torch.testing.assert_close(block(x), expected)
    assert block.shortcut.bias is None
    assert block.squeeze.out_channels == 2


def test_se_block_identity_shortcut_alias_and_channel_check():
    block = SEBlock(8, 8, stride=1)
    assert isinstance(block.shortcut, nn.Identity)
    assert PreActBlock is SEBlock
    with pytest.raises(ConfigError):
        SEBlock(4, 6)


def test_lstm_cell_gate_order_i_f_o_g():
    cell = ConvLSTMCell(1)
    with torch.no_grad():
        cell.h2h.weight.zero_()
        cell.h2h.bias.zero_()
    i, f, o, g = 0.3, -0.7, 1.1, 0.5
    x = torch.tensor([i, f, o, g]).view(1, 4, 1, 1).expand(1, 4, 2, 2).contiguous()
    s = torch.sigmoid
    c1 = s(torch.tensor(i)) * torch.tanh(torch.tensor(g))
    h1 = s(torch.tensor(o)) * torch.tanh(c1)
    torch.testing.assert_close(cell(x), h1.expand(1, 1, 2, 2))
    c2 = s(torch.tensor(f)) * c1 + c1
    h2 = s(torch.tensor(o)) * torch.tanh(c2)
    torch.testing.assert_close(cell(x), h2.expand(1, 1, 2, 2))
    torch.testing.assert_close(cell.c, c2.expand(1, 1, 2, 2))


def test_gru_cell_matches_its_formula():
    torch.manual_seed(2)
    cell = ConvGRUCell(3, 2)
    x = torch.randn(2, 3, 4, 5)
    h0 = torch.randn(2, 2, 4, 5)
    cell(torch.zeros_like(x))
    cell.set_state([h0])
    z, r = F.conv2d(torch.cat([h0, x], 1), cell.conv_rz.weight, cell.conv_rz.bias, padding=1).chunk(2, 1)
    u, r = torch.sigmoid(z), torch.sigmoid(r)
    n = torch.tanh(F.conv2d(torch.cat([r * h0, x], 1), cell.conv_n.weight, cell.conv_n.bias, padding=1))
    torch.testing.assert_close(cell(x), (1 - u) * h0 + u * n)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_conv_rnn_state_is_lazy_reallocated_and_not_saved(cell):
    torch.manual_seed(3)
    rnn = ConvRNN(3, 4, cell, separable=True).eval()
    assert rnn.cell.h.numel() == 0
    x = torch.randn(2, 2, 3, 6, 8)
    first = rnn(x)
    assert first.shape == (2, 2, 4, 6, 8)
    assert rnn.cell.h.shape == (2, 4, 6, 8)
    assert not any(key.endswith((".h", ".c")) for key in rnn.state_dict())
    # A new batch size or spatial size starts again from zeros: the output equals a fresh module's.
    for shape in [(2, 3, 3, 6, 8), (2, 2, 3, 4, 8)]:
        y = torch.randn(*shape)
        fresh = ConvRNN(3, 4, cell, separable=True).eval()
        fresh.load_state_dict(rnn.state_dict())
        torch.testing.assert_close(rnn(y), fresh(y))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_conv_rnn_detaches_the_state_at_every_forward(cell):
    rnn = ConvRNN(2, 3, cell)
    x = torch.randn(2, 1, 2, 4, 4)
    rnn(x).sum().backward()
    # Without the detach this second backward would run into the freed graph of the first batch.
    rnn(x).sum().backward()
    assert rnn.cell.h.requires_grad


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_conv_rnn_reset_is_per_sample(cell):
    torch.manual_seed(4)
    rnn = ConvRNN(2, 3, cell)
    rnn.reset(torch.tensor([1.0, 0.0]))  # no state yet: nothing to do
    rnn(torch.randn(2, 2, 2, 4, 4))
    before = [s.clone() for s in rnn.cell.get_state()]
    rnn.reset(torch.tensor([1.0, 0.0]).view(2, 1, 1, 1))
    for old, new in zip(before, rnn.cell.get_state()):
        assert torch.equal(new[0], old[0])
        assert torch.count_nonzero(new[1]) == 0
    with pytest.raises(ConfigError, match="3 values"):
        rnn.reset(torch.ones(3))
    rnn.reset_all()
    assert all(torch.count_nonzero(s) == 0 for s in rnn.cell.get_state())


def test_conv_rnn_rejects_unknown_cell():
    with pytest.raises(ConfigError, match="gru"):
        ConvRNN(2, 3, "rnn")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_conv_rnn_scripts_and_matches_eager(cell):
    torch.manual_seed(5)
    rnn = ConvRNN(2, 3, cell).eval()
    scripted = torch.jit.script(rnn)
    x = torch.randn(3, 2, 2, 4, 4)
    expected = rnn(x)
    scripted.reset_all()
    torch.testing.assert_close(scripted(x), expected, rtol=1e-4, atol=1e-6)


def test_unet_regressor_checks_its_lists():
    with pytest.raises(ConfigError, match="as many"):
        UnetRegressor([nn.Identity()], nn.Identity(), [], [4], 8, [])
