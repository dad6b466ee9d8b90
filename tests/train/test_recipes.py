"""The fast recipe's tricks pinned to hand-computed values (airbench94's)."""

from contextlib import nullcontext

import pytest
import torch
from torch import nn

from keyless.augment import random_contrast, random_cutout
from keyless.errors import ConfigError
from keyless.runs import build_model
from keyless.train import recipe, recipes


def test_triangle_schedule_by_hand():
    config = recipe("fast")  # 10 epochs of 48 steps: 480 steps, peak at int(0.23 * 480) = 110
    factors = [recipes.lr_factor(config, step, 480, 48) for step in (0, 55, 110, 295, 479)]
    # rise 0.2 -> 1 over 110 steps; then fall 1 -> 0.07 over the remaining 370
    expected = [0.2, 0.6, 1.0, 1 - 0.93 * 185 / 370, 1 - 0.93 * 369 / 370]
    assert factors == pytest.approx(expected, abs=1e-12)


def test_step_schedule_by_hand():
    config = recipe("paper")  # / 10 at epochs 150 and 225
    epochs = (0, 149, 150, 224, 225, 299)
    factors = [recipes.lr_factor(config, epoch * 391, 300 * 391, 391) for epoch in epochs]
    assert factors == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_lookahead_decay_grows_to_its_maximum_at_the_end():
    # airbench94: 0.95^5 * (step / total)^3, weakest averaging early, strongest at the end
    assert recipes.lookahead_decay(480, 480) == pytest.approx(0.7737809375)
    assert recipes.lookahead_decay(240, 480) == pytest.approx(0.7737809375 / 8)
    assert recipes.lookahead_decay(5, 480) == pytest.approx(0.7737809375 * (5 / 480) ** 3)


@pytest.mark.parametrize(("every", "updates"), [(5, (5, 10, 12)), (4, (4, 8, 12)), (20, (12,))])
def test_learner_averages_every_few_steps_and_ends_on_the_average(monkeypatch, every, updates):
    # the last step always enters the average: a run shorter than the period must not end on
    # its starting weights
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    config = recipe("fast", batch_size=8, lookahead_every=every)
    groups = [{"params": [], "base": 0.0}, {"params": list(model.parameters()), "base": 0.1}]
    optimizer = torch.optim.SGD(groups, lr=0.1)  # group 0: no whitening bias here
    lookahead = recipes.Lookahead(model)
    learner = recipes.Learner(model, model, optimizer, lookahead, config, 12, 6, nullcontext())
    decays = []
    original = recipes.Lookahead.update

    def record(self, model, decay):
        decays.append(decay)
        original(self, model, decay)

    monkeypatch.setattr(recipes.Lookahead, "update", record)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    for step in range(12):
        learner.step(x, y, step)
    assert decays == pytest.approx([0.95**5 * (done / 12) ** 3 for done in updates])
    assert not torch.equal(model.weight, start["weight"])
    for name, value in model.state_dict().items():  # the final weights are the average
        torch.testing.assert_close(value, lookahead.ema[name])


def test_lookahead_every_must_be_a_positive_number_of_steps():
    with pytest.raises(ConfigError, match="lookahead_every must be at least 1 step, got 0"):
        recipe("fast", lookahead_every=0)


@pytest.mark.parametrize("strength", [-0.1, 1.0])
def test_contrast_strength_must_keep_factors_positive(strength):
    with pytest.raises(
        ConfigError, match=f"contrast must be at least 0 and below 1, got {strength}"
    ):
        recipe("fast", contrast=strength)


def test_augment_applies_contrast_and_cutout_only_when_asked():
    images = torch.randint(0, 256, (6, 8, 8, 3), dtype=torch.uint8)
    flips = torch.zeros(6, dtype=torch.bool)
    still = recipe("fast", translate=0)
    assert torch.equal(recipes.augment(images, flips, still, torch.Generator()), images)
    moved = recipes.augment(images, flips, still.replace(contrast=0.5), torch.Generator())
    expected = random_contrast(images, 0.5, torch.Generator())
    assert torch.equal(moved, expected) and not torch.equal(moved, images)
    cut = recipes.augment(images, flips, still.replace(cutout=3), torch.Generator())
    expected = random_cutout(images, 3, torch.Generator())
    assert torch.equal(cut, expected) and not torch.equal(cut, images)


def test_optimizer_groups_follow_airbench():
    config = recipe("fast", model_kwargs={"widths": [16, 32, 32]})
    model = build_model(config, 10)
    optimizer = recipes.make_optimizer(model, config)
    whiten, norms, rest = optimizer.param_groups
    assert whiten["params"] == [model.backbone.whiten.bias]
    assert whiten["base"] == config.lr and whiten["weight_decay"] == config.weight_decay
    assert norms["base"] == pytest.approx(64 * config.lr)
    assert norms["weight_decay"] == pytest.approx(config.weight_decay / 64)  # same decay per step
    bn = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {id(p) for p in norms["params"]} == {id(m.bias) for m in bn}
    assert not any(m.weight.requires_grad for m in bn)  # BatchNorm weights frozen at 1
    trainable = [p for p in model.parameters() if p.requires_grad]
    grouped = [p for group in optimizer.param_groups for p in group["params"]]
    assert sorted(map(id, grouped)) == sorted(map(id, trainable))  # each exactly once
    assert rest["base"] == config.lr
    recipes.set_lr(optimizer, config, 3 * 48 - 1, 480, 48)
    assert whiten["lr"] > 0
    recipes.set_lr(optimizer, config, 3 * 48, 480, 48)  # whitening bias frozen after 3 epochs
    assert whiten["lr"] == 0 and norms["lr"] > 0


@pytest.mark.parametrize(("kernel", "width"), [(2, 24), (3, 54)])
def test_whitening_uses_the_uncentred_patch_covariance(kernel, width):
    kwargs = {"widths": [16, 32, 32], "whiten_kernel": kernel, "whiten_width": width}
    model = build_model(recipe("fast", model_kwargs=kwargs), 10)
    directions = width // 2
    fastnet = model.backbone
    assert torch.count_nonzero(fastnet.whiten.bias) == 0  # starts at zero (airbench)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 32, 32, 3), dtype=torch.uint8, generator=generator)
    model.init_from_data(images)
    x = model.features_in(images).float()
    with torch.no_grad():
        y = nn.functional.conv2d(x, fastnet.whiten.weight[:directions])  # the eigen-filters
    y = y.permute(0, 2, 3, 1).reshape(-1, directions).double()
    second_moment = y.T @ y / len(y)  # uncentred: identity only if the mean was kept in
    identity = torch.eye(directions, dtype=torch.double)
    torch.testing.assert_close(second_moment, identity, atol=2e-3, rtol=0)
    assert fastnet.whiten.weight.shape == (width, 3, kernel, kernel)


def test_invariant_recipe_keeps_airbench_per_example_lr_and_decay_per_epoch():
    fast, invariant = recipe("fast"), recipe("invariant")
    assert (invariant.keys, invariant.stem, invariant.batch_size) == (
        "independent",
        "invariant",
        256,
    )
    # a summed loss: the same lr per step is the same lr per example
    assert invariant.lr == fast.lr
    # torch decays by lr * weight_decay per step: 4x the steps per epoch, 1/4 of the decay each
    per_epoch = {
        c.batch_size: c.lr * c.weight_decay * 50_000 / c.batch_size for c in (fast, invariant)
    }
    assert per_epoch[256] == pytest.approx(per_epoch[1024])
    assert recipe("invariant", stem="spline").stem == "spline"  # the CLI's --stem still wins


@pytest.mark.parametrize("name", ["fast", "invariant", "invariant96"])
def test_another_batch_size_keeps_a_summed_loss_recipes_decay_per_image(name):
    base, small = recipe(name), recipe(name, batch_size=128)
    per_image = [c.lr * c.weight_decay / c.batch_size for c in (base, small)]
    assert per_image[1] == pytest.approx(per_image[0])
    assert recipe(name, batch_size=128, weight_decay=0.5).weight_decay == 0.5  # given: kept
    assert recipe("paper", batch_size=256).weight_decay == recipe("paper").weight_decay  # a mean


def test_orthogonalize_evens_out_the_singular_values():
    g = torch.randn(64, 576, generator=torch.Generator().manual_seed(0))
    g = g * torch.logspace(-2, 0, 576)  # singular values spread over two decades
    s = torch.linalg.svdvals(recipes.orthogonalize(g).float())
    assert s.min() > 0.5 and s.max() < 1.5  # Muon's band, about U V^T
    assert recipes.orthogonalize(g.T).shape == (576, 64)


def test_muon_takes_the_conv_filters_and_sgd_the_rest():
    config = recipe("fast", model_kwargs={"widths": [16, 32, 32]}, optimizer="muon", muon_lr=0.3)
    model = build_model(config, 10)
    optimizer = recipes.make_optimizer(model, config)
    whiten, _, rest, filters = optimizer.param_groups
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    convs = [w for w in convs if w.requires_grad]  # not the frozen whitening
    assert {id(p) for p in filters["params"]} == {id(w) for w in convs} and len(convs) == 6
    assert [p.ndim for p in rest["params"]] == [2]  # the head
    assert filters["base"] == 0.3 and whiten["params"] == [model.backbone.whiten.bias]
    rescaled = [w.detach() * len(w) ** 0.5 / w.norm() for w in convs]  # norm sqrt(out)
    model(torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)).square().sum().backward()
    optimizer.step()
    for w, start in zip(convs, rescaled, strict=True):  # then an orthogonal step of length lr
        step = (w.detach() - start).reshape(len(w), -1)
        s = torch.linalg.svdvals(step / 0.3)
        assert s.min() > 0.3 and s.max() < 1.5 and len(s) == min(step.shape)
    # its state survives a checkpoint: test_engine.py resumes a Muon run mid-epoch exactly


def test_muon_recipe_is_the_invariant_one_with_airbench94_muons_optimizer():
    muon, invariant = recipe("muon"), recipe("invariant")
    assert (muon.keys, muon.stem, muon.optimizer, muon.batch_size) == (
        "independent",
        "invariant",
        "muon",
        1000,
    )
    assert (muon.muon_lr, muon.muon_momentum, muon.lookahead) == (0.24, 0.6, False)
    assert muon.lr == invariant.lr  # the SGD groups keep airbench's per-example lr
    total = 500
    factors = [recipes.lr_factor(muon, step, total, 50) for step in (0, 250, total)]
    assert factors == pytest.approx([1.0, 0.5, 0.0])  # linear from the first step to zero


def test_invariant96_recipe_is_airbench96_on_the_fold():
    r = recipe("invariant96")
    assert (r.keys, r.stem, r.batch_size, r.epochs) == ("independent", "invariant", 1024, 31.0)
    assert r.model_kwargs == {"widths": [128, 512, 512], "residual": True}
    assert (r.translate, r.cutout, r.warmup_fraction, r.lr_end) == (4, 12, 0.1, 0.0)
    assert r.lr == pytest.approx(recipe("fast").lr * 9.0 / 11.5)  # lr 9.0 per 1024 images
    per_step_decay = r.lr * r.weight_decay * 1024 / r.batch_size
    assert per_step_decay == pytest.approx(0.012 * 1024 / (1024 * (1 + 1 / 0.15)))


def test_another_model_drops_a_fastnet_recipes_shape_but_refuses_given_widths():
    assert recipe("invariant96", model="resnet18").with_model_options().model_kwargs == {}
    with pytest.raises(ConfigError, match=r"^--widths shape bagnet and fastnet, not resnet18$"):
        recipe("invariant96", model="resnet18").with_model_options(widths=[8, 8, 8])


def test_given_model_options_go_on_top_of_the_recipes_and_only_to_models_that_take_them():
    kept = recipe("invariant96").with_model_options(widths=[16, 32, 32]).model_kwargs
    assert kept == {"widths": [16, 32, 32], "residual": True}  # the recipe's shape stays
    assert recipe("bag").with_model_options(widths=[8, 8]).model_kwargs == {"widths": [8, 8]}
    assert recipe("bag").with_model_options(attention_layers=1).model_kwargs["attention_layers"]
    with pytest.raises(ConfigError, match=r"^--whiten-width shape fastnet, not bagnet$"):
        recipe("bag").with_model_options(whiten_width=8)
    with pytest.raises(ConfigError, match=r"^--attention-layers shape bagnet, not fastnet$"):
        recipe("invariant").with_model_options(attention_layers=1)
    with pytest.raises(ConfigError, match=r"^--colour shape no model, not fastnet$"):
        recipe("fast").with_model_options(colour="red")
