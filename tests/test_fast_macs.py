"""The fast MAC count equals the fvcore reference (``count_macs(...).total``) exactly."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS
from torch import nn

import archlab.measurement.fast_macs as fast_macs
from archlab.layers.parc import ParCMixer
from archlab.measurement.fast_macs import (
    MAC_FORMULAS,
    UncountedOpError,
    count_macs_fast,
    count_macs_with_blocks,
)
from archlab.measurement.flops import EXTRA_MAC_HANDLES, count_macs
from archlab.measurement.memory import peak_memory
from archlab.models import build_model
from archlab.space import list_spaces, load_space

SAMPLES_PER_SPACE = 2
# cheap presets with layers the spaces cannot produce: ParC-ResNet50's dense ParC convs,
# Mobile-Former-26M's grouped pointwise convs
CHEAP_PRESETS = ["parc_resnet50", "mobileformer_26m"]


@pytest.fixture
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure the figure comes from the fast pass, not from its fallback to ``count_macs``."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("count_macs_fast fell back to count_macs")

    monkeypatch.setattr(fast_macs, "count_macs", fail)


def _space_samples() -> list[tuple[str, int]]:
    """The first seeds from 100 on that give a valid arch, per shipped space."""
    cases = []
    for name in list_spaces():
        space, seed, found = load_space(name), 100, 0
        while found < SAMPLES_PER_SPACE:
            try:
                space.to_cfg(space.sample(seed))
            except ValueError:
                pass
            else:
                cases.append((name, seed))
                found += 1
            seed += 1
    return cases


def _same_count(model: nn.Module, resolution: int | tuple[int, int], **kw: int) -> int:
    reference = count_macs(model, resolution, **kw)
    assert reference.unsupported_ops == {}
    fast = count_macs_fast(model, resolution, **kw)
    assert fast == reference.total
    return fast


@pytest.mark.usefixtures("no_fallback")
@pytest.mark.parametrize("name,seed", _space_samples())
def test_random_arch_of_every_space(name: str, seed: int) -> None:
    space = load_space(name)
    torch.manual_seed(0)
    model = space.family.build(space.to_cfg(space.sample(seed)))
    assert _same_count(model, space.resolution) > 0


@pytest.mark.usefixtures("no_fallback")
@pytest.mark.parametrize("preset", CHEAP_PRESETS)
def test_cheap_presets(preset: str) -> None:
    _same_count(build_model({"preset": preset}), 64)


class _Tiny(nn.Module):
    """conv 3→4 (3×3, 8×8 map) → 64 tokens → LayerNorm(4) → linear 4→6."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(F.relu(self.conv(x)).flatten(2).transpose(1, 2)))


@pytest.mark.usefixtures("no_fallback")
def test_hand_counted_tiny_model() -> None:
    conv = 8 * 8 * 4 * 3 * 3 * 3  # output positions × out channels × kernel taps × in channels
    norm = 5 * 64 * 4  # fvcore: 5 per element with an affine weight
    fc = 64 * 4 * 6
    model = _Tiny().train()
    assert count_macs_fast(model, 8) == conv + norm + fc == 9728
    assert count_macs_fast(model, 8, batch=2) == 2 * 9728
    assert model.training  # counted in eval mode, handed back as it came


class _Ops(nn.Module):
    """One of each op with a formula that the shipped models do not all run."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 5))
        self.b = nn.Parameter(torch.randn(5))
        self.k = nn.Parameter(torch.randn(2, 3, 3, 3))
        self.norms = nn.Sequential(
            nn.GroupNorm(1, 3), nn.InstanceNorm2d(3, affine=True), nn.InstanceNorm2d(3),
            nn.BatchNorm2d(3, track_running_stats=False), nn.BatchNorm2d(3, affine=False),
            nn.LayerNorm(8, elementwise_affine=False),
        )  # fmt: skip
        self.up = nn.Upsample(scale_factor=2)
        self.deconv = nn.ConvTranspose2d(3, 4, 2, stride=2)
        self.conv1d = nn.Conv1d(3, 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.flatten(2)  # (1, 3, 64)
        a = torch.matmul(t.transpose(1, 2), t)  # (1, 64, 64)
        b = torch.bmm(a, t.transpose(1, 2))
        c = torch.mm(b[0], t[0])
        d = torch.addmm(self.b, c[:, :8], self.w)
        e = torch.einsum("bij,bjk->bik", a, a) + torch.einsum("nct,ncp->ntp", t, t)
        outer = torch.einsum("ij,kl->ijkl", d, d[:3, :2])
        y = self.up(x) + F.interpolate(x, scale_factor=2, mode="bilinear")
        grid = F.grid_sample(x, torch.zeros(1, 5, 5, 2), align_corners=False)
        spec = torch.fft.rfft(x, n=12) * (1 + 2j) * 3
        spec = spec * torch.fft.rfft(x, dim=2).mean(dim=(2, 3), keepdim=True).conj()
        q = t.reshape(1, 3, 16, 4)
        attn = F.scaled_dot_product_attention(q, q[:, :, :5], q[:, :, :5, :2])
        parts = [
            d, e, outer, self.norms(x), self.deconv(y), grid, F.conv2d(x[0], self.k),
            self.conv1d(t), F.adaptive_avg_pool2d(x, 3), torch.fft.irfft(spec, n=12), attn,
            torch.linalg.vector_norm(x, dim=1),
        ]  # fmt: skip
        return torch.stack([p.sum() for p in parts])


@pytest.mark.usefixtures("no_fallback")
def test_every_formula_against_the_reference() -> None:
    _same_count(_Ops(), 8)


@pytest.mark.usefixtures("no_fallback")
@pytest.mark.parametrize("dense", [False, True], ids=["depthwise", "dense"])
def test_fft_parc(dense: bool) -> None:
    mixer = nn.Sequential(ParCMixer(8, meta_size=12, dense=dense, impl="fft"))
    _same_count(mixer, (12, 10), in_chans=8)


def test_reference_formulas_all_have_a_fast_one() -> None:
    assert set(_DEFAULT_SUPPORTED_OPS) | set(EXTRA_MAC_HANDLES) <= set(MAC_FORMULAS)


def test_op_without_a_formula_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _Tiny()
    monkeypatch.delitem(MAC_FORMULAS, "aten::linear")  # as if the table missed a counted op
    with pytest.raises(UncountedOpError, match="aten::linear"):
        count_macs_fast(model, 8)


class _Baddbmm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.flatten(2)
        return torch.baddbmm(t[:, :1, :1], t.transpose(1, 2), t)  # (1, 64, 64)


def test_op_unknown_to_both_raises_and_leaves_the_rng_alone() -> None:
    model = _Baddbmm()
    assert count_macs(model, 8).unsupported_ops == {"aten::baddbmm": 1}
    torch.manual_seed(0)
    with pytest.raises(UncountedOpError, match="aten::baddbmm"):
        count_macs_fast(model, 8)
    after = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(4))


class _Unused(nn.Module):
    """A linear layer whose result is dropped (``shape_only``: only its shape is read)."""

    def __init__(self, shape_only: bool) -> None:
        super().__init__()
        self.shape_only = shape_only
        self.used, self.unused = nn.Linear(3, 4), nn.Linear(3, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.flatten(2).transpose(1, 2)
        width = self.unused(t).shape[-1]
        return self.used(t).repeat(1, 1, width if self.shape_only else 1)


class _WriteInto(nn.Module):
    """The counted result reaches the output only through an in-place write into a slice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(1, 8, 8, 8)
        out[..., :4] = self.fc(x.permute(0, 2, 3, 1))
        return out


@pytest.mark.parametrize(
    "model", [_Unused(False), _Unused(True), _WriteInto()], ids=["dead", "shape", "write"]
)
def test_ops_off_the_data_path_leave_the_count_to_the_reference(
    model: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    reference: Callable[..., object] = fast_macs.count_macs

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return reference(*args, **kwargs)

    monkeypatch.setattr(fast_macs, "count_macs", counted)
    _same_count(model, 8)
    assert calls == [1]


def test_draws_from_the_rng_like_the_reference() -> None:
    model, after = _Tiny(), []
    for count in (count_macs, count_macs_fast):
        torch.manual_seed(0)
        count(model, 8)
        after.append(torch.rand(4))
    assert torch.equal(after[0], after[1])


def test_a_model_on_the_meta_device_counts_the_same() -> None:
    space = load_space("plgvit")
    cfg = space.to_cfg(space.default())
    torch.manual_seed(0)
    real = space.family.build(cfg)
    with torch.device("meta"):
        meta = space.family.build(cfg)
    assert count_macs_fast(meta, 64) == count_macs_fast(real, 64)


@pytest.mark.parametrize("name", ["plgvit", "mobileformer"])
def test_blocks_and_their_macs_come_from_the_same_pass(name: str, no_fallback: None) -> None:
    from archlab.measurement.blocks import block_infos

    space = load_space(name)
    torch.manual_seed(0)
    model = space.family.build(space.to_cfg(space.default()))
    counted = fast_macs.count_macs_with_blocks(model, 64)
    assert counted.total == count_macs_fast(model, 64)
    assert counted.blocks == block_infos(model, torch.randn(1, 3, 64, 64))
    reference = count_macs(model, 64).by_module
    assert {b.name: counted.block_macs[b.name] for b in counted.blocks} == {
        b.name: reference.get(b.name, 0) for b in counted.blocks
    }


@pytest.mark.parametrize("name,seed", _space_samples())
def test_memory_from_the_counting_pass_equals_a_warm_profiled_pass(name: str, seed: int) -> None:
    """The search records peak memory in the counting pass, a freshly built model's first: it must
    equal peak_memory's figure, which profiles a second pass (lazy initialisation excluded)."""
    space = load_space(name)
    torch.manual_seed(0)
    model = space.family.build(space.to_cfg(space.sample(seed))).eval()
    counted = count_macs_with_blocks(model, space.resolution, blocks=False, memory=True)
    reference = peak_memory(model, space.resolution)
    assert counted.activations_peak_bytes == reference.activations_peak_bytes > 0
