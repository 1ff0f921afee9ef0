from __future__ import annotations

import pytest
import torch

from opsin.eventflow import feature_extractor as fe
from opsin.eventflow.errors import ConfigError
from opsin.eventflow.layers import UnetRegressor

# Exact parameter counts for 6 input channels and 3 scales (midinet2 with depth 1).
PARAMETER_COUNTS = {
    ("eminet", "lstm", 16): 660_158,
    ("eminet", "lstm", 32): 2_617_950,
    ("eminet", "gru", 16): 703_742,
    ("eminet", "gru", 32): 2_795_230,
    ("eminet_non_sep", "lstm", 16): 1_059_174,
    ("eminet_non_sep", "lstm", 32): 4_224_198,
    ("eminet_non_sep", "gru", 16): 873_382,
    ("eminet_non_sep", "gru", 32): 3_483_974,
    ("midinet", "lstm", 16): 725_482,
    ("midinet", "lstm", 32): 2_881_702,
    ("midinet", "gru", 16): 769_066,
    ("midinet", "gru", 32): 3_058_982,
    ("midinet2", "lstm", 16): 766_827,
    ("midinet2", "lstm", 32): 3_046_311,
    ("midinet2", "gru", 16): 1_012_075,
    ("midinet2", "gru", 32): 4_028_327,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_public_names():
    assert sorted(fe.AVAILABLE_ARCHS) == ["eminet", "eminet_non_sep", "midinet", "midinet2"]
    assert fe.AVAILABLES_ARCHS is fe.AVAILABLE_ARCHS
    for name in fe.__all__:
        assert hasattr(fe, name)


@pytest.mark.parametrize(("arch", "cell", "base"), list(PARAMETER_COUNTS))
def test_exact_parameter_counts(arch, cell, base):
    net = fe.AVAILABLE_ARCHS[arch](6, base=base, scales=3, rnn_cell=cell)
    assert isinstance(net, UnetRegressor)
    assert sum(p.numel() for p in net.parameters()) == PARAMETER_COUNTS[arch, cell, base]


@pytest.mark.parametrize("arch", sorted(fe.AVAILABLE_ARCHS))
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("scales", [2, 3, 4])
def test_output_shapes(arch, cell, scales):
    torch.manual_seed(0)
    net = fe.AVAILABLE_ARCHS[arch](3, base=4, scales=scales, rnn_cell=cell)
    assert net.scales == scales
    x = torch.randn(2, 1, 3, 16, 24)
    flows = net(x)
    assert len(flows) == scales
    for i, flow in enumerate(flows):
        factor = 2 ** (scales - 1 - i)
        assert flow.shape == (2, 1, 2, 16 // factor, 24 // factor)
        assert torch.isfinite(flow).all()


def test_channel_layout():
    for arch in fe.AVAILABLE_ARCHS:
        assert fe.AVAILABLE_ARCHS[arch](6, base=4, scales=2).channels == [4, 8, 16, 8, 4]


def test_decoder_inputs_take_skip_and_previous_flow():
    net = fe.eminet_non_sep(6, base=16, scales=3)
    assert [level.block.conv.in_channels for level in net.decoders] == [192, 98, 50]
    assert [level.regressor.in_channels for level in net.decoders] == [64, 32, 16]
    # The raw input is never a skip: the first encoder is the only layer that reads 6 channels.
    assert net.encoders[0].conv.in_channels == 6


def test_previous_flow_feeds_the_next_level():
    torch.manual_seed(1)
    net = fe.eminet(2, base=4, scales=2).eval()
    x = torch.randn(1, 1, 2, 8, 8)
    reference = net(x)
    with torch.no_grad():
        net.decoders[0].regressor.bias.add_(5.0)
    net.reset_all()
    changed = net(x)
    assert not torch.allclose(changed[0], reference[0])
    assert not torch.allclose(changed[1], reference[1])


def test_midinet2_rezero_starts_at_zero():
    torch.manual_seed(2)
    net = fe.midinet2(2, base=4, scales=2, depth=2).eval()
    middle = net.middle
    assert torch.equal(middle.rezero, torch.zeros(2))
    x = torch.randn(2, 1, 8, 2, 2)
    expected = middle.entry(x.flatten(0, 1)).unflatten(0, [2, 1])
    torch.testing.assert_close(middle(x), expected)
    assert all(rnn.x2h.norm.__class__.__name__ == "Identity" for rnn in middle.rnns)


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: fe.eminet(6, rnn_cell="rnn"), "rnn_cell"),
        (lambda: fe.midinet(6, base=6), "multiple of 4"),
        (lambda: fe.midinet2(6, depth=0), "depth"),
        (lambda: fe.eminet(6, scales=0), "scales"),
    ],
)
def test_bad_arguments_raise_config_error(call, word):
    with pytest.raises(ConfigError, match=word):
        call()


def test_extra_keywords_are_ignored_except_by_midinet2():
    assert fe.eminet(6, base=4, depth=3).scales == 3
    assert fe.eminet_non_sep(6, base=4, separable=True).scales == 3
    with pytest.raises(TypeError):
        fe.midinet2(6, base=4, unknown=1)
