"""MixStyle, EFDMix, DSU and IBN-Net-a against their papers' defining formulas, and inside the backbones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from stylecls.errors import StyleclsError
from stylecls.models import ARCHS, FEATURE_AUGS, build_model, count_parameters
from stylecls.models.feature_aug import DSU, EFDMix, MixStyle, dsu, efdmix, mixstyle, set_domains
from stylecls.models.ibn import IBN
from stylecls.spec import RunSpec

EPS = 1e-6


def _stats(v: list[float]) -> tuple[float, float]:
    """Mean and sqrt(unbiased variance + eps) of a list, by hand."""
    m = sum(v) / len(v)
    return m, math.sqrt(sum((a - m) ** 2 for a in v) / (len(v) - 1) + EPS)


def _small() -> torch.Tensor:
    torch.manual_seed(0)
    return (torch.randn(3, 2, 3, 4, dtype=torch.float64) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)) + 0.5


def test_mixstyle_is_the_papers_formula() -> None:
    x, perm = _small(), torch.tensor([2, 0, 1])
    lam = torch.tensor([0.2, 0.7, 1.0], dtype=torch.float64).view(3, 1, 1, 1)
    out = mixstyle(x, lam, perm, eps=EPS)
    for i in range(3):
        for c in range(2):
            mu_i, sig_i = _stats(x[i, c].flatten().tolist())
            mu_j, sig_j = _stats(x[int(perm[i]), c].flatten().tolist())
            lm = float(lam[i])
            gamma, beta = lm * sig_i + (1 - lm) * sig_j, lm * mu_i + (1 - lm) * mu_j
            expected = gamma * (x[i, c] - mu_i) / sig_i + beta
            torch.testing.assert_close(out[i, c], expected)
    torch.testing.assert_close(out[2], x[2])  # λ = 1: the image keeps its own style


def test_efdmix_is_the_papers_formula() -> None:
    x, perm = _small(), torch.tensor([1, 2, 0])
    lam = torch.tensor([0.3, 0.5, 0.0], dtype=torch.float64).view(3, 1, 1, 1)
    out = efdmix(x, lam, perm)
    for i in range(3):
        for c in range(2):
            values = x[i, c].flatten().tolist()
            partner = sorted(x[int(perm[i]), c].flatten().tolist())
            ranks = sorted(range(len(values)), key=lambda k: values[k])
            lm = float(lam[i])
            expected = [0.0] * len(values)
            for r, k in enumerate(ranks):
                expected[k] = lm * values[k] + (1 - lm) * partner[r]
            torch.testing.assert_close(out[i, c].flatten(), torch.tensor(expected, dtype=torch.float64))
    # λ = 0: image 2 takes image 0's exact value distribution, in its own order
    assert torch.equal(out[2].flatten(1).sort(1).values, x[0].flatten(1).sort(1).values)


def test_dsu_is_the_papers_formula() -> None:
    x = _small()
    torch.manual_seed(1)
    noise_mu, noise_sig = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    out = dsu(x, noise_mu, noise_sig, eps=EPS)
    stats = [[_stats(x[i, c].flatten().tolist()) for c in range(2)] for i in range(3)]
    for c in range(2):
        spread_mu = _stats([stats[i][c][0] for i in range(3)])[1]  # batch std of μ (sqrt(var + eps))
        spread_sig = _stats([stats[i][c][1] for i in range(3)])[1]
        for i in range(3):
            mu, sig = stats[i][c]
            beta, gamma = mu + float(noise_mu[i, c]) * spread_mu, sig + float(noise_sig[i, c]) * spread_sig
            torch.testing.assert_close(out[i, c], gamma * (x[i, c] - mu) / sig + beta)


@pytest.mark.parametrize("module", [MixStyle(p=1.0), EFDMix(p=1.0), DSU(p=1.0)], ids=["mixstyle", "efdmix", "dsu"])
def test_augmentations_act_in_training_only(module: torch.nn.Module) -> None:
    x = (torch.randn(6, 4, 5, 5) * 2 + 1).requires_grad_()
    torch.manual_seed(0)
    out = module.train()(x)
    assert out.shape == x.shape and not torch.allclose(out, x)
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert module.eval()(x) is x  # eval: the identity, whatever the batch
    one = x[:1]
    assert module.train()(one) is one  # one image: nothing to mix with
    module.p = 0.0
    assert module.train()(x) is x


def test_crossdomain_mixing_takes_partners_from_other_domains() -> None:
    module = MixStyle(p=1.0, mix="crossdomain")
    model = torch.nn.Sequential(module)
    set_domains(model, torch.tensor([0, 0, 0, 1, 1, 2]))
    domains = module.domains
    assert domains is not None
    for seed in range(20):
        torch.manual_seed(seed)
        _, perm = module.draw(torch.zeros(6, 1, 2, 2))
        assert (domains[perm] != domains).all()
    set_domains(model, torch.zeros(6, dtype=torch.long))  # one domain: random partners (the fallback)
    _, perm = module.draw(torch.zeros(6, 1, 2, 2))
    assert sorted(perm.tolist()) == list(range(6))
    with pytest.raises(StyleclsError, match="unknown mixing"):
        MixStyle(mix="domain")


@pytest.mark.parametrize("aug", [a for a in FEATURE_AUGS if a != "none"])
def test_backbone_with_srm_and_augmentation_trains_and_eval_is_per_image(aug: str) -> None:
    """issue 19 part 3: combinable with the blocks; in eval an image's output ignores its batch."""
    torch.manual_seed(0)
    model = build_model("cifar_resnet20", "srm", 4, feature_aug=aug)
    augs = [m for m in model.modules() if type(m).__name__.lower() == aug]
    assert len(augs) == 2  # after stages 1-2 of the CIFAR ResNet's 3
    assert set(model.state_dict()) == set(build_model("cifar_resnet20", "srm", 4).state_dict())  # no new keys
    for m in augs:
        m.p = 1.0  # type: ignore[assignment]
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model.train()(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(len(x))])
        shuffled = model(x.flip(0)).flip(0)
    torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batch, shuffled, rtol=1e-4, atol=1e-5)


def test_resnet_places_augmentation_after_stages_1_to_3() -> None:
    model = build_model("resnet18", feature_aug="mixstyle")
    seen: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, MixStyle):
            module.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
        elif name in ("layer1", "layer2", "layer3", "layer4"):
            module.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
    model.eval()(torch.randn(1, 3, 32, 32))
    assert seen == ["layer1", "feature_aug.0", "layer2", "feature_aug.1", "layer3", "feature_aug.2", "layer4"]
    with pytest.raises(StyleclsError, match="unknown feature augmentation 'cutmix'"):
        build_model("resnet18", feature_aug="cutmix")


def test_feature_aug_names_the_run_and_is_checked() -> None:
    spec = RunSpec(dataset="demo", block="srm", feature_aug="mixstyle").resolved()
    assert "-srm-mixstyle-" in spec.run_name()
    assert "mixstyle" not in RunSpec(dataset="demo", block="srm").resolved().run_name()
    with pytest.raises(StyleclsError, match="unknown feature aug 'mixup'; choose one of: dsu, efdmix, mixstyle, none"):
        RunSpec(feature_aug="mixup").resolved()


# --- IBN-Net-a -----------------------------------------------------------------------------------


def test_ibn_is_instance_norm_on_half_and_batch_norm_on_the_rest() -> None:
    torch.manual_seed(0)
    ibn = IBN(6)
    with torch.no_grad():
        for p in ibn.parameters():
            p.normal_()
    x = torch.randn(4, 6, 5, 5) * 3 + 2
    out = ibn.train()(x)
    inst = F.instance_norm(x[:, :3], weight=ibn.IN.weight, bias=ibn.IN.bias, eps=ibn.IN.eps)
    batch = F.batch_norm(x[:, 3:], None, None, ibn.BN.weight, ibn.BN.bias, training=True, eps=ibn.BN.eps)  # type: ignore[arg-type]
    torch.testing.assert_close(out, torch.cat([inst, batch], 1))
    # eval: the InstanceNorm half still uses each image's statistics (no running statistics)
    torch.testing.assert_close(ibn.eval()(x)[:, :3], inst)


@pytest.mark.parametrize(("arch", "plain"), [("resnet18_ibn_a", "resnet18"), ("resnet50_ibn_a", "resnet50")])
def test_ibn_resnets_place_ibn_in_stages_1_to_3_and_load_torchvision_weights(tmp_path, arch: str, plain: str) -> None:
    model = build_model(arch)
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        units = list(getattr(model, stage))
        assert all(isinstance(u.bn1, IBN) == (stage != "layer4") for u in units)
        assert not any(isinstance(m, IBN) for u in units for n, m in u.named_modules() if n != "bn1")
    assert count_parameters(model) == count_parameters(build_model(plain))  # IN's affine replaces BN's
    torch.manual_seed(0)
    tv = getattr(torchvision.models, plain)()
    with torch.no_grad():
        for name, buf in tv.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
    path = tmp_path / "tv.pth"
    torch.save(tv.state_dict(), path)
    loaded = build_model(arch, pretrained=path)
    report = loaded.load_report
    assert set(report.loaded) >= {k for k in tv.state_dict() if "layer4" in k or not k.startswith("layer")}
    assert not report.new and not report.reinitialised  # every IBN tensor came from the plain bn1
    ibn, bn1 = loaded.layer1[0].bn1, {k: v for k, v in tv.layer1[0].bn1.state_dict().items()}
    half = ibn.in_channels
    assert torch.equal(ibn.IN.weight, bn1["weight"][:half]) and torch.equal(ibn.BN.weight, bn1["weight"][half:])
    assert torch.equal(ibn.BN.running_mean, bn1["running_mean"][half:])
    assert torch.equal(loaded.layer4[0].bn1.running_mean, tv.layer4[0].bn1.running_mean)
    assert loaded(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_ibn_archs_are_registered_with_their_cifar_variants() -> None:
    assert {"resnet18_ibn_a", "resnet34_ibn_a", "resnet50_ibn_a", "resnet101_ibn_a",
            "cifar_resnet20_ibn_a", "cifar_resnet56_ibn_a"} <= set(ARCHS)
    model = build_model("cifar_resnet20_ibn_a", "srm", 3, feature_aug="dsu")
    stages = (model.layer1, model.layer2, model.layer3)
    assert [isinstance(u.bn1, IBN) for s in stages for u in s] == [True] * 6 + [False] * 3
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


# --- through a run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_with_mixstyle_frozen_bn_and_identity_srm_rebuilds_the_same_model(demo_env, tmp_path, monkeypatch,
                                                                                capsys) -> None:
    """``stylecls train --feature-aug mixstyle --bn frozen --block-init identity`` trains an epoch; the run's
    model is rebuilt with those settings, and in eval an image's output does not depend on its batch."""
    import sys

    from stylecls.cli import main
    from stylecls.runfolder import RunFolder

    torch.set_num_threads(1)
    weights = tmp_path / "plain.pth"
    torch.save(build_model("cifar_resnet20", num_classes=3).state_dict(), weights)
    args = ["train", "--block", "srm", "--feature-aug", "mixstyle", "--bn", "frozen", "--block-init", "identity",
            "--pretrained", str(weights),
            "--epochs", "1", "--img-size", "16", "--batch-size", "16", "--limit-train", "32", "--limit-val", "16",
            "--warmup-epochs", "0", "--workers", "0", "--no-progress", "--out", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", ["stylecls", *args])
    main()  # returns on success
    out = capsys.readouterr().out
    run = RunFolder(out.strip().splitlines()[-1])
    assert "-srm-mixstyle-" in run.path.name
    spec = run.spec()
    assert (spec.feature_aug, spec.bn, spec.block_init) == ("mixstyle", "frozen", "identity")
    model, _ = run.build_model("last")
    assert sum(isinstance(m, MixStyle) for m in model.modules()) == 2
    x = torch.randn(6, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.cat([model(x[i : i + 1]) for i in range(6)]), rtol=1e-4, atol=1e-5)


def test_a_sweep_crosses_feature_augmentations_like_blocks() -> None:
    from stylecls.sweep import GridAxes, expand_grid

    specs = expand_grid(RunSpec(dataset="demo"), GridAxes(block=["none", "srm"], feature_aug=["none", "mixstyle"]))
    names = sorted(s.run_name() for s in specs)
    assert len(names) == 4 and sum("-mixstyle-" in n for n in names) == 2
