from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from opsin.eventflow.errors import ConfigError
from opsin.eventflow.flow_network import FlowNetwork
from opsin.eventflow.warping import Pyramid, Warping, warp_to_micro_tbin

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]


WEIGHTS = {"data": 1.0, "smoothness": 0.4}


def small(arch: str = "eminet", array_dim=(2, 6, 16, 24), **kwargs) -> FlowNetwork:
    torch.manual_seed(0)
    kwargs.setdefault("base", 4)
    return FlowNetwork(array_dim, WEIGHTS, arch, **kwargs).eval()


def cells(net: FlowNetwork):
    return [m for m in net.modules() if hasattr(m, "detach_state")]


def test_construction_and_accessors():
    net = FlowNetwork((1, 6, 32, 32), WEIGHTS)
    assert sum(p.numel() for p in net.parameters()) == 660_158
    assert net.flow_loss_weights == WEIGHTS
    assert net.get_nb_scales() == 3
    head = net.get_warping_head()
    assert isinstance(head, list)
    assert len(head) == 3
    assert all(isinstance(w, Warping) for w in head)
    assert isinstance(net.pyramid, Pyramid)
    assert net.pyramid.num_levels == 3


@pytest.mark.parametrize(
    ("args", "kwargs", "word"),
    [
        (((1, 6, 30, 32), WEIGHTS), {}, "divisible"),
        (((1, 6, 32, 36), WEIGHTS), {"scales": 4}, "divisible"),
        (((1, 6, 32), WEIGHTS), {}, "array_dim"),
        (((1, 6, 32, 32), WEIGHTS, "resnet"), {}, "eminet_non_sep"),
        (((1, 6, 32, 32), WEIGHTS, "midinet2"), {"unknown": 3}, "unknown"),
        (((1, 6, 32, 32), WEIGHTS), {"rnn_cell": "rnn"}, "rnn_cell"),
    ],
)
def test_bad_configurations_raise_config_error(args, kwargs, word):
    with pytest.raises(ConfigError, match=word):
        FlowNetwork(*args, **kwargs)


def test_forward_rejects_bad_inputs():
    net = small()
    with pytest.raises(ConfigError, match="divisible"):
        net(torch.zeros(1, 1, 6, 18, 24))
    with pytest.raises(ConfigError, match="6"):
        net(torch.zeros(1, 1, 5, 16, 24))


@pytest.mark.parametrize("scales", [2, 3, 4])
def test_forward_is_coarsest_first(scales):
    net = small("midinet", scales=scales)
    flows = net(torch.randn(2, 3, 6, 16, 24))
    assert [tuple(f.shape) for f in flows] == [
        (2, 3, 2, 16 >> (scales - 1 - i), 24 >> (scales - 1 - i)) for i in range(scales)
    ]


def test_reset_reaches_every_cell_per_sample():
    net = small("midinet2", depth=2)
    assert len(cells(net)) == 2  # both nested ConvRNN cells of the bottleneck
    net(torch.randn(2, 2, 6, 16, 24))
    before = [[s.clone() for s in cell.get_state()] for cell in cells(net)]
    net.reset([1, 0])
    after = [cell.get_state() for cell in cells(net)]
    for old_cell, new_cell in zip(before, after):
        for old, new in zip(old_cell, new_cell):
            assert torch.count_nonzero(old[1]) > 0
            assert torch.count_nonzero(new[1]) == 0
            assert torch.equal(new[0], old[0])


@pytest.mark.parametrize("rnn_cell", ["lstm", "gru"])
def test_reset_zero_gives_the_outputs_of_a_fresh_network(rnn_cell):
    net = small("midinet2", rnn_cell=rnn_cell)
    with torch.no_grad():
        net.feature_extractor.middle.rezero.fill_(1.0)  # at 0 (its init) the recurrent layer would not matter
    fresh = copy.deepcopy(net)
    x = torch.randn(2, 2, 6, 16, 24)
    expected = fresh(x)
    net(torch.randn(2, 2, 6, 16, 24))
    carried = net(x)
    assert not torch.allclose(carried[-1], expected[-1])
    net.reset(torch.zeros(2, 1, 1, 1))
    for got, want in zip(net(x), expected):
        torch.testing.assert_close(got, want)
    net.reset(0.0)
    torch.testing.assert_close(net(x)[-1], expected[-1])


def test_reset_with_a_mask_of_another_batch_size_raises():
    net = small()
    net.reset(torch.ones(3))  # no state yet: nothing to check
    net(torch.randn(1, 2, 6, 16, 24))
    with pytest.raises(ConfigError, match="3 values"):
        net.reset(torch.ones(3))


def test_state_is_not_in_checkpoints_and_reallocated_on_batch_change():
    net = small()
    net(torch.randn(1, 2, 6, 16, 24))
    keys = list(net.state_dict())
    assert not any(key.endswith((".h", ".c")) for key in keys)
    other = FlowNetwork((2, 6, 16, 24), WEIGHTS, base=4).eval()
    other.load_state_dict(net.state_dict())
    x = torch.randn(1, 3, 6, 16, 24)
    torch.testing.assert_close(net(x)[-1], other(x)[-1])  # B changed 2 -> 3: zeros again


def test_get_and_set_states_replay_a_batch():
    net = small(rnn_cell="gru")
    net(torch.randn(2, 2, 6, 16, 24))
    saved = net.get_states()
    y = torch.randn(2, 2, 6, 16, 24)
    first = net(y)[-1]
    net.set_states(saved)
    torch.testing.assert_close(net(y)[-1], first)
    with pytest.raises(ConfigError):
        net.set_states([])


def test_gradient_is_truncated_at_each_batch():
    net = FlowNetwork((2, 6, 16, 24), WEIGHTS, base=4).train()
    x = torch.randn(2, 2, 6, 16, 24)
    net(x)[-1].sum().backward()
    net(x)[-1].sum().backward()  # would fail on the freed graph if the state were not detached
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize(("arch", "rnn_cell"), [("eminet", "lstm"), ("midinet2", "gru"), ("eminet_non_sep", "gru")])
def test_torchscript_equals_eager(arch, rnn_cell):
    net = small(arch, rnn_cell=rnn_cell)
    scripted = torch.jit.script(net)
    x1, x2 = torch.randn(2, 2, 6, 16, 24), torch.randn(2, 2, 6, 16, 24)
    for x in (x1, x2):  # the second batch continues the state
        for got, want in zip(scripted(x), net(x)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    scripted.reset_all()
    first_again = scripted(x1)
    net.reset_all()
    for got, want in zip(first_again, net(x1)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    scripted.reset(torch.tensor([1.0, 0.0]))
    net.reset(torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(scripted(x2)[-1], net(x2)[-1], rtol=1e-4, atol=1e-6)


def test_torchscript_reset_all_reproduces_the_first_output():
    scripted = torch.jit.script(small())
    assert scripted.get_nb_scales() == 3
    x = torch.randn(2, 2, 6, 16, 24)
    first = scripted(x)
    scripted(x)
    scripted.reset_all()
    for got, want in zip(scripted(x), first):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_pyramid_levels_are_bilinear_align_corners():
    net = small()
    x = torch.randn(2, 1, 6, 16, 24)
    levels = net.interpolate_all_inputs_using_pyramid(x)
    assert len(levels) == 3
    assert levels[-1] is x
    for i, level in enumerate(levels[:-1]):
        size = (16 >> (2 - i), 24 >> (2 - i))
        expected = F.interpolate(x.flatten(0, 1), size=size, mode="bilinear", align_corners=True)
        torch.testing.assert_close(level, expected.view(2, 1, 6, *size))


def _constant_flow(net: FlowNetwork, u: float, v: float) -> None:
    """Makes every level regress the constant flow (u, v)."""
    with torch.no_grad():
        for level in net.feature_extractor.decoders:
            level.regressor.weight.zero_()
            level.regressor.bias.copy_(torch.tensor([u, v]))


def test_sharpen_aligns_a_line_moving_one_pixel_per_micro_bin():
    net = small()
    _constant_flow(net, 3.0, 0.0)  # 3 px per bin = 1 px per micro-bin with M = 3
    x = torch.zeros(1, 1, 6, 16, 24)
    for m in range(3):
        x[0, 0, 2 * m + 1, :, 8 + m] = 1.0  # ON channel of micro-bin m, the line moving right
    flow, sharp = net.sharpen(x, micro_tbin=0)
    assert flow.shape == (1, 2, 16, 24)
    assert sharp.shape == (1, 1, 6, 16, 24)
    for m in range(3):
        column = sharp[0, 0, 2 * m + 1, 4:12].sum(0)
        assert torch.allclose(column[8], torch.tensor(8.0), atol=1e-5)
        assert torch.allclose(column.sum(), torch.tensor(8.0), atol=1e-5)
    _, onto_last = net.sharpen(x, micro_tbin=2)
    assert torch.allclose(onto_last[0, 0, 1, 4:12, 10], torch.ones(8), atol=1e-5)


def test_sharpen_at_a_coarse_level_uses_that_level_and_its_flow():
    net = small()
    x = torch.rand(2, 1, 6, 16, 24)
    net.reset_all()
    flow, sharp = net.sharpen(x, micro_tbin=1, depth_level=0)
    assert flow.shape == (2, 2, 4, 6)
    net.reset_all()
    coarse_flow = net(x)[0].flatten(0, 1)
    torch.testing.assert_close(flow, coarse_flow)
    level = net.interpolate_all_inputs_using_pyramid(x)[0]
    torch.testing.assert_close(sharp, warp_to_micro_tbin(level, flow, micro_tbin=1, micro_bins=3))


def test_sharpen_needs_micro_bins():
    net = small(array_dim=(2, 2, 16, 24))
    x = torch.rand(1, 1, 2, 16, 24)
    with pytest.raises(ConfigError, match="micro-bins"):
        net.sharpen(x, preprocess="histo")
    with pytest.raises(ConfigError, match="depth_level"):
        net.sharpen(x, micro_bins=2, depth_level=3)
    _, sharp = net.sharpen(x, micro_bins=2)
    assert sharp.shape == x.shape


def test_recurrent_state_names_list_exactly_the_cell_buffers():
    net = small("midinet2", depth=2)
    names = net.recurrent_state_names("network.")
    assert names == [
        "network.feature_extractor.middle.rnns.0.cell.h",
        "network.feature_extractor.middle.rnns.0.cell.c",
        "network.feature_extractor.middle.rnns.1.cell.h",
        "network.feature_extractor.middle.rnns.1.cell.c",
    ]
    assert net._ddp_params_and_buffers_to_ignore == [name.removeprefix("network.") for name in names]
    buffers = dict(net.named_buffers())
    assert all(name.removeprefix("network.") in buffers for name in names)


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    import os

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        net = FlowNetwork((2, 2, 8, 8), WEIGHTS, base=4, scales=2)
        ddp = DistributedDataParallel(net)
        gen = torch.Generator().manual_seed(10 + rank)
        inputs = [torch.randn(2, 1, 2, 8, 8, generator=gen) for _ in range(3)]
        for x in inputs:  # training steps without an optimizer: the weights stay equal to the reference's
            ddp(x)[-1].sum().backward()
        torch.save({"inputs": inputs, "states": net.get_states()}, f"{out_dir}/{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_keeps_each_rank_state(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]
    for result in results:
        torch.manual_seed(0)
        reference = FlowNetwork((2, 2, 8, 8), WEIGHTS, base=4, scales=2)
        for x in result["inputs"]:
            reference(x)
        for got, want in zip(result["states"], reference.get_states()):
            for g, w in zip(got, want):
                torch.testing.assert_close(g, w)
    assert not torch.allclose(results[0]["states"][0][0], results[1]["states"][0][0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torchscript_equals_eager_in_fp16_on_cuda():
    net = small().cuda().half()
    scripted = torch.jit.script(net)
    x = torch.randn(2, 2, 6, 16, 24, device="cuda", dtype=torch.float16)
    for got, want in zip(scripted(x), net(x)):
        torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-3)
