"""ferrograd.tune: the learning-rate search on problems whose answer is known, the recipe's
stage decisions, budgets, the JSON-lines resume, plots and the `ferrograd tune` command."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import cli, models, tune

# ---------------------------------------------------------------------------- problems


def _least_squares(threshold_at: float, seed: int = 1):
    """A linear-regression problem (x, y, threshold) scaled so that plain full-batch gradient
    descent on its training part diverges above `threshold = 2 / lambda_max` of the MSE's
    Hessian, placed at `threshold_at`; the features' scales differ (ill-conditioned), so within
    the stable range a larger rate is always better after a fixed number of steps."""
    rng = np.random.default_rng(seed)
    n, d, n_tr = 250, 4, 200
    x = rng.standard_normal((n, d)) * np.array([1.0, 0.6, 0.3, 0.15])
    y = x @ rng.standard_normal(d) + 0.5 + 0.01 * rng.standard_normal(n)

    def threshold(x: np.ndarray) -> float:
        a = np.hstack([x[:n_tr], np.ones((n_tr, 1))])
        # the Hessian of mean((a @ w - y)^2) in (weights, bias)
        return float(2.0 / np.linalg.eigvalsh(2.0 / n_tr * a.T @ a).max())

    x = x * np.sqrt(threshold(x) / threshold_at)
    x = x.astype(np.float32)
    return x, y.astype(np.float32), threshold(x.astype(np.float64)), n_tr


def _linear():
    return fg.nn.Sequential(fg.nn.Linear(4, 1))


def _teacher(n: int = 1000, d: int = 20, seed: int = 0):
    """Classes from a random tanh teacher with noise: a small network underfits it and a large
    one overfits it (the acceptance problem)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((d, 4))
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (np.tanh(x @ w) + 0.3 * rng.standard_normal((n, 4))).argmax(1).astype(np.int64)
    return x, y


def _strip(trials):
    return [{k: v for k, v in t.items() if k not in ("seconds", "resumed")} for t in trials]


# ---------------------------------------------------------------------------- the LR search


def test_search_brackets_the_divergence_threshold():
    """Threshold between 0.032 and 0.064: the search doubles from 0.001 up to 0.032, whose
    double diverges; every rate above the threshold diverged, none below did."""
    x, y, thr, n_tr = _least_squares(0.001 * 2**5.5)
    r = tune.learning_rate(
        _linear, x, y, optimizer="sgd", epochs=30, batch_size=n_tr, validation_split=0.2, verbose=0
    )
    lrs = [t["lr"] for t in r.trials]
    assert lrs[0] == 0.001 and all(b == 2 * a for a, b in zip(lrs, lrs[1:]))
    assert r.best_lr is not None and r.best_lr < thr < 2 * r.best_lr
    above = [t for t in r.trials if t["lr"] == 2 * r.best_lr]
    assert above and above[0]["diverged"] and above[0]["reason"]
    for t in r.trials:
        assert t["diverged"] == (t["lr"] > thr), t
    assert "search ended" in str(r) and "diverged" in r.stopped_because


def test_search_halves_when_the_start_diverges_and_never_returns_a_diverged_rate():
    x, y, thr, n_tr = _least_squares(0.001 * 2**-1.5)  # 0.00035: 0.001 and 0.0005 diverge
    r = tune.learning_rate(
        _linear, x, y, optimizer="sgd", epochs=30, batch_size=n_tr, validation_split=0.2, verbose=0
    )
    lrs = [t["lr"] for t in r.trials]
    assert lrs[:3] == [0.001, 0.0005, 0.00025]
    assert [t["diverged"] for t in r.trials[:3]] == [True, True, False]
    assert r.best_lr == 0.00025 < thr
    assert not r.best["diverged"]


def test_every_trial_diverging_gives_no_rate():
    x, y, _, n_tr = _least_squares(1e-9)
    r = tune.learning_rate(_linear, x, y, optimizer="sgd", epochs=5, batch_size=n_tr, max_trials=4, verbose=0)
    assert r.best_lr is None and r.best is None and len(r.trials) == 4
    assert all(t["diverged"] for t in r.trials)
    assert "every trial diverged" in r.table()


def test_search_is_deterministic_with_the_same_seed():
    x, y = _teacher(400)

    def search(seed):
        return tune.learning_rate(
            "standard", x, y, build_kwargs={"width": 16}, epochs=2, seed=seed, max_trials=4, verbose=0
        )

    a, b = search(0), search(0)
    assert a.best_lr == b.best_lr and _strip(a.trials) == _strip(b.trials)
    assert _strip(search(1).trials) != _strip(a.trials)


def test_result_table_and_dict():
    x, y = _teacher(300)
    out = io.StringIO()
    r = tune.learning_rate(
        lambda: models.standard(20, 4, width=16, depth=1), x, y, epochs=2, max_trials=3, stream=out
    )
    text = out.getvalue()
    assert "lr 0.001:" in text and "<- best" in text and "max_trials=3" in text
    t = r.trials[0]
    for key in ("lr", "loss", "val_loss", "acc", "val_acc", "diverged", "seconds"):
        assert key in t
    d = json.loads(json.dumps(r.to_dict()))
    assert d["best_lr"] == r.best_lr and len(d["trials"]) == 3 and d["metric"] == "val_loss"
    assert "LRSearch(best_lr=" in repr(r)


@pytest.mark.parametrize(
    "optimizer", ["sgd", "momentum", "nesterov", "rmsprop", "adamw", lambda p, lr: fg.optim.SGD(p, lr=lr)]
)
def test_any_optimizer(optimizer):
    x, y, _, n_tr = _least_squares(0.05)
    r = tune.learning_rate(_linear, x, y, optimizer=optimizer, epochs=2, max_trials=2, verbose=0)
    assert len(r.trials) == 2 and r.best_lr in (0.001, 0.002)


class _FakeClock:
    """The budget's clock (`tune._trial._now`), advanced only by the test: time budgets are checked
    as behaviour, never against the wall clock."""

    def __init__(self, monkeypatch):
        self.t = 0.0
        monkeypatch.setattr(tune._trial, "_now", lambda: self.t)

    def ticking(self, seconds, make=_linear):
        """A model factory whose forward passes take `seconds(k)` of fake time each, for the
        k-th model it builds (k = 0, 1, ...)."""
        clock = self
        built = [0]

        class Slow(fg.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner, self.cost = make(), seconds(built[0])
                built[0] += 1

            def forward(self, x):
                clock.t += self.cost
                return self.inner(x)

        return Slow


def test_max_trials_and_time_budget_are_respected(monkeypatch):
    x, y, _, n_tr = _least_squares(1.0)  # nothing diverges: only the budget stops it
    r = tune.learning_rate(_linear, x, y, optimizer="sgd", epochs=1, max_trials=3, patience=9, verbose=0)
    assert len(r.trials) == 3 and "max_trials=3" in r.stopped_because

    clock = _FakeClock(monkeypatch)

    def slow():  # each trial takes 0.3 s of the budget's clock, in its builder
        clock.t += 0.3
        return _linear()

    r = tune.learning_rate(
        slow, x, y, optimizer="sgd", epochs=1, max_trials=None, patience=99, time_budget=1.1, verbose=0
    )
    # the model built for the log's key takes 0.3 s, the trials end at 0.6 s and 0.9 s:
    # then 0.2 s are left, less than the last trial's 0.3 s, so no third trial starts
    assert [t["seconds"] for t in r.trials] == pytest.approx([0.3, 0.3])
    assert "time_budget=1.1s" in r.stopped_because and "the last trial took 0.3s" in r.stopped_because
    assert not any(t.get("cut") for t in r.trials)


def test_time_budget_cuts_a_running_trial_which_does_not_count(monkeypatch, tmp_path):
    x, y, _, n_tr = _least_squares(1.0)
    clock = _FakeClock(monkeypatch)
    # 0.01 s per forward pass (about 20 s for a trial of 2000 batches), 0.03 s from the
    # third trial on (model 0 is the one built for the log's key)
    slow = clock.ticking(lambda k: 0.01 if k < 3 else 0.03)
    log = tmp_path / "lr.jsonl"
    kw = dict(optimizer="sgd", batch_size=1, epochs=10, patience=99, max_trials=None, verbose=0, log=log)
    r = tune.learning_rate(slow, x, y, time_budget=70.0, **kw)
    first, second, third = r.trials
    # two trials of 20 s; the third starts with about 30 s left, expected to take 20 s, and
    # is cut at the budget's end after about 30 / 0.03 = 1000 steps
    assert first["cut"] is None and first["steps"] == 10 * n_tr and first["epochs"] == 10
    assert second["cut"] is None and second["steps"] == 10 * n_tr
    assert third["cut"] and 950 <= third["steps"] <= 1000, third["steps"]
    assert clock.t == pytest.approx(70.0, abs=0.1)
    assert "cut" in r.stopped_because and "does not count" in r.stopped_because
    assert r.best_lr in (first["lr"], second["lr"])  # never the cut trial
    assert "cut:" in r.table()
    logged = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert logged == [repr(first["lr"]), repr(second["lr"])]  # a rerun with more time trains it in full


def test_steps_budget():
    x, y, _, n_tr = _least_squares(1.0)  # 200 training samples: 7 batches of 32 per epoch
    r = tune.learning_rate(_linear, x, y, optimizer="sgd", steps=3, max_trials=2, verbose=0)
    assert [(t["steps"], t["epochs"]) for t in r.trials] == [(3, 1), (3, 1)]
    r = tune.learning_rate(_linear, x, y, optimizer="sgd", steps=10, max_trials=1, verbose=0)
    assert (r.trials[0]["steps"], r.trials[0]["epochs"]) == (10, 2)
    # three steps of a trial are three optimizer steps: the same weights as three by hand
    fg.manual_seed(0)
    ref = _linear()
    opt = fg.optim.SGD(ref.parameters(), lr=0.001)
    fg.train.fit(
        ref,
        x[:n_tr],
        y[:n_tr],
        loss="mse",
        optimizer=opt,
        epochs=1,
        batch_size=32,
        verbose=0,
        callbacks=[_StopAfter(3)],
    )
    got = tune.learning_rate(_linear, x, y, optimizer="sgd", steps=3, max_trials=1, verbose=0).trials[0]
    want = fg.train.evaluate(ref, x[n_tr:], y[n_tr:], loss="mse")["loss"]
    assert got["val_loss"] == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="epochs= or steps="):
        tune.learning_rate(_linear, x, y, epochs=2, steps=3, verbose=0)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        tune.recipe(x, y, steps=0, verbose=0)


class _StopAfter(fg.callbacks.Callback):
    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_batch_begin(self, batch, logs=None):
        if self.seen >= self.n:
            self.model.stop_training = True
        self.seen += 1


def test_regression_and_binary_problems():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5)).astype(np.float32)
    reg = tune.learning_rate(
        "standard",
        x,
        x @ np.ones(5, np.float32),
        build_kwargs={"width": 8},
        epochs=2,
        max_trials=2,
        verbose=0,
    )
    assert reg.settings["loss"] == "mse" and "val_mae" in reg.trials[0] and "val_acc" not in reg.trials[0]
    yb = (x[:, 0] > 0).astype(np.float32)
    binary = tune.learning_rate(
        "standard",
        x,
        yb,
        loss="binary_cross_entropy",
        build_kwargs={"width": 8},
        epochs=2,
        max_trials=2,
        verbose=0,
    )
    assert binary.settings["loss"] == "binary_cross_entropy" and "val_acc" in binary.trials[0]
    res = tune.recipe(x, yb, loss="binary_cross_entropy", epochs=3, max_trials=5, verbose=0)
    assert isinstance(res.model[-1], fg.nn.Sigmoid)  # probabilities, trained from logits
    p = res.model(fg.tensor(x)).numpy()
    assert p.shape == (300, 1) and (p >= 0).all() and (p <= 1).all()
    res = tune.recipe(x, x @ np.ones(5, np.float32), epochs=3, max_trials=5, metric="val_mae", verbose=0)
    assert res.config["loss"] == "mse" and res.config["kwargs"]["head"] == "linear"


def test_validation_data_is_required_and_used():
    x, y = _teacher(300)
    with pytest.raises(ValueError, match="validation"):
        tune.learning_rate("standard", x, y, validation_split=0.0, verbose=0)
    r = tune.learning_rate(
        "standard",
        x[:200],
        y[:200],
        build_kwargs={"width": 8},
        validation_data=(x[200:], y[200:]),
        epochs=1,
        max_trials=1,
        verbose=0,
    )
    assert r.trials and "val_loss" in r.trials[0]


# ---------------------------------------------------------------------------- the recipe


def test_recipe_stages_on_a_problem_that_underfits_small_and_overfits_large():
    x, y = _teacher(1000)
    out = io.StringIO()
    res = tune.recipe(x, y, architecture="standard", seed=0, validation_split=0.2, stream=out)
    text = out.getvalue()
    stages = [t["stage"] for t in res.trials]
    assert stages[0] == "3 learning rate" and res.trials[0]["lr"] == 0.001
    grow = [t for t in res.trials if t["stage"] == "4 grow"]
    # step 1: the smallest width with >= 1.1 x 800 parameters: 20 (w^2 + 26 w + 4 = 924)
    assert grow[0]["width"] == 20 and grow[0]["params"] == 924 >= 1.1 * 800
    assert fg.models.standard(20, 4, width=20, depth=2, batchnorm=False, dropout=0).num_parameters() == 924
    assert grow[0]["decision"].startswith("underfitting: no overfitting rule fired")
    # an overfitting rule fires at a width wider than the start, and batchnorm goes in there
    assert "overfitting at width" in grow[-1]["decision"] and "rule " in grow[-1]["decision"]
    assert grow[-1]["width"] > grow[0]["width"] and not grow[-1]["batchnorm"]
    bn = [t for t in res.trials if t["stage"] == "5 batchnorm"]
    assert bn and bn[0]["batchnorm"] and bn[0]["width"] == grow[-1]["width"]
    drop = [t for t in res.trials if t["stage"] == "6 dropout"]
    assert drop and drop[0]["dropout"] == 0.2 and drop[0]["batchnorm"]
    for line in (
        "1 start:",
        "2 no regularization",
        "3 learning rate:",
        "4 grow:",
        "5 batchnorm:",
        "6 dropout:",
        "7 verdict:",
    ):
        assert line in text and line in res.report
    assert res.verdict in ("well tuned", "overfit", "underfit")
    tuned = [t["lr"] for t in res.trials if t["stage"] in ("3 learning rate", "6 learning rate")]
    assert res.config["lr"] in tuned
    # the rate is tuned again on the best network so far, by halving (then doubling)
    relr = [t for t in res.trials if t["stage"] == "6 learning rate"]
    assert relr and "6 learning rate:" in text
    for t in relr:
        assert t["decision"] and np.log2(t["lr"] / 0.001) == pytest.approx(round(np.log2(t["lr"] / 0.001)))
        assert (t["width"], t["batchnorm"], t["dropout"]) == (
            relr[0]["width"],
            relr[0]["batchnorm"],
            relr[0]["dropout"],
        )
    # the model is trained: its validation loss is the best trial's
    best = min((t for t in res.trials if t.get("id")), key=lambda t: t["val_loss"])
    got = fg.train.evaluate(res.model, x[800:], y[800:])["loss"]
    assert got == pytest.approx(best["val_loss"], rel=1e-4)
    assert tune.build(res.config).num_parameters() == res.config["params"]
    acc = float((res.model(fg.tensor(x[800:])).numpy().argmax(1) == y[800:]).mean())
    assert acc == pytest.approx(best["val_acc"]) and acc > 0.5  # chance: about 0.3


def test_recipe_selu_and_residual_paths():
    x, y = _teacher(400)
    selu = tune.recipe(x, y, architecture="selu", epochs=4, max_trials=8, verbose=0)
    assert not any(t["stage"] == "5 batchnorm" for t in selu.trials)
    assert "5 batchnorm: skipped" in selu.report
    drops = [t["dropout"] for t in selu.trials if t["stage"] == "6 dropout"]
    assert set(drops) <= {0.05, 0.1}
    res = tune.recipe(x, y, architecture="residual", epochs=4, max_trials=8, verbose=0)
    assert not res.trials[0]["batchnorm"]
    for t in res.trials:
        if "config" in t:  # each trial's network is rebuilt from its config, batchnorm as recorded
            m = tune.build(t["config"])
            has_bn = any(isinstance(s, fg.nn.BatchNorm1d) for s in m.modules())
            assert has_bn == t["batchnorm"] and any(isinstance(s, fg.nn.Residual) for s in m.modules())


def test_recipe_budget(monkeypatch):
    x, y = _teacher(400)
    res = tune.recipe(x, y, epochs=2, max_trials=4, verbose=0)
    assert len(res.trials) == 4 and "budget: max_trials=4" in res.report
    res = tune.recipe(x, y, steps=5, max_trials=3, verbose=0)
    assert [t["steps"] for t in res.trials] == [5, 5, 5] and res.config["steps"] == 5
    # wall-clock: a forward pass takes 1e-5 s per parameter of the budget's clock, so a
    # doubling of the width takes about twice (to four times) the time its predecessor took
    clock = _FakeClock(monkeypatch)
    real_build = tune.build

    class Slow(fg.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.inner = real_build(config)
            self.cost = 1e-5 * sum(p.numel() for p in self.inner.parameters())

        def forward(self, x):
            clock.t += self.cost
            return self.inner(x)

    monkeypatch.setattr(tune._recipe, "build", Slow)
    res = tune.recipe(x, y, epochs=2, time_budget=1.0, max_trials=None, verbose=0)
    cut = [t for t in res.trials if t.get("cut")]
    assert len(cut) == 1 and cut[0] is res.trials[-1] and "cut" in cut[0]["decision"]
    assert "the cut trial does not count" in res.report and res.model is not None
    assert res.config["kwargs"] != cut[0]["config"]["kwargs"] or res.config["lr"] != cut[0]["lr"]
    # the cut ends the recipe at the budget: one batch and the epoch's validation pass over
    assert 1.0 <= clock.t < 1.1, clock.t
    assert "4 grow: budget: time_budget=1s: the time budget ran out after" in res.report


# ---------------------------------------------------------------------------- resume


def test_lr_search_resumes_from_its_log(tmp_path, monkeypatch):
    x, y, _, n_tr = _least_squares(0.001 * 2**5.5)
    log = tmp_path / "lr.jsonl"
    kw = dict(optimizer="sgd", epochs=30, batch_size=n_tr, verbose=0, log=log)
    full = tune.learning_rate(_linear, x, y, **kw)
    lines = log.read_text().splitlines()
    assert len(lines) == len(full.trials) == 7
    # a search interrupted after two trials, the third cut mid-write
    log.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    ran = []
    real = tune._trial._run
    monkeypatch.setattr(tune._trial, "_run", lambda *a, **k: ran.append(a[3]) or real(*a, **k))
    again = tune.learning_rate(_linear, x, y, **kw)
    assert ran == [t["lr"] for t in full.trials[2:]]  # the first two came from the log
    assert [t.get("resumed", False) for t in again.trials] == [True, True] + [False] * 5
    assert again.best_lr == full.best_lr and _strip(again.trials) == _strip(full.trials)
    # other settings: nothing taken from the log
    ran.clear()
    tune.learning_rate(_linear, x, y, **{**kw, "epochs": 29, "max_trials": 2})
    assert len(ran) == 2


def test_recipe_resumes_from_its_log(tmp_path, monkeypatch):
    x, y = _teacher(400)
    log = tmp_path / "recipe.jsonl"
    first = tune.recipe(x, y, epochs=4, max_trials=8, verbose=0, log=log)
    ran = []
    real = tune._trial._run
    monkeypatch.setattr(tune._trial, "_run", lambda *a, **k: ran.append(a[3]) or real(*a, **k))
    again = tune.recipe(x, y, epochs=4, max_trials=8, verbose=0, log=log)
    assert len(ran) <= 1  # at most the final model, trained again (deterministically)
    assert again.config == first.config
    assert [t.get("decision") for t in again.trials] == [t.get("decision") for t in first.trials]
    np.testing.assert_allclose(
        again.model(fg.tensor(x)).numpy(), first.model(fg.tensor(x)).numpy(), rtol=1e-5
    )


# ---------------------------------------------------------------------------- plots, CLI


def test_plot(tmp_path):
    x, y, _, n_tr = _least_squares(0.001 * 2**3.5)
    r = tune.learning_rate(_linear, x, y, optimizer="sgd", epochs=20, batch_size=n_tr, verbose=0)
    svg = tmp_path / "lr.svg"
    assert r.plot(svg) == str(svg) and "<svg" in svg.read_text() and "polyline" in svg.read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            r.plot(tmp_path / "lr.png")
    else:
        r.plot(tmp_path / "lr.png")
        assert (tmp_path / "lr.png").stat().st_size > 0


def test_cli_tune_lr_and_recipe(tmp_path, capsys):
    x, y = _teacher(300)
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=y)
    report, saved = tmp_path / "lr.md", tmp_path / "lr.json"
    code = cli.main(
        [
            "tune",
            "lr",
            "--data",
            str(data),
            "--width",
            "16",
            "--depth",
            "1",
            "--epochs",
            "1",
            "--max-trials",
            "2",
            "--report",
            str(report),
            "--save",
            str(saved),
            "--batch-size",
            "32",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "lr 0.001:" in out and "best lr:" in out
    assert "Learning-rate search" in report.read_text() and json.loads(saved.read_text())["best_lr"] in (
        0.001,
        0.002,
    )
    # the bundled MNIST sample, cut short
    assert (
        cli.main(["tune", "lr", "--limit", "300", "--width", "8", "--epochs", "1", "--max-trials", "1"]) == 0
    )
    assert cli.main(["tune", "lr", "--data", str(data), "--steps", "4", "--max-trials", "1"]) == 0
    assert "4 steps on 240 samples" in capsys.readouterr().out
    model, md = tmp_path / "m.safetensors", tmp_path / "r.md"
    code = cli.main(
        [
            "tune",
            "recipe",
            "--data",
            str(data),
            "--epochs",
            "2",
            "--max-trials",
            "4",
            "--save",
            str(model),
            "--report",
            str(md),
            "--budget",
            "30",
        ]
    )
    assert code == 0 and model.exists() and md.read_text().startswith("# Tuning recipe")


def test_ctrl_c_stops_the_search_and_the_log_resumes_it(tmp_path, monkeypatch):
    """Ctrl-C during a trial (fit returns an interrupted History): that trial is not logged,
    the result says so, and a rerun with the same log runs only what is missing."""
    x, y, _, n_tr = _least_squares(0.001 * 2**5.5)
    log = tmp_path / "lr.jsonl"
    kw = dict(optimizer="sgd", epochs=30, batch_size=n_tr, verbose=0, log=log)
    real = fg.train.fit
    calls = []

    def fit(*a, **k):
        h = real(*a, **k)
        calls.append(1)
        h.interrupted = len(calls) == 3
        return h

    monkeypatch.setattr(tune._train, "fit", fit)
    cut = tune.learning_rate(_linear, x, y, **kw)
    assert cut.interrupted and len(cut.trials) == 2 and "interrupted" in cut.stopped_because
    assert len(log.read_text().splitlines()) == 2
    monkeypatch.setattr(tune._train, "fit", real)
    again = tune.learning_rate(_linear, x, y, **kw)
    assert not again.interrupted and again.best_lr == 0.032
    assert [t.get("resumed", False) for t in again.trials][:3] == [True, True, False]


def test_trials_run_on_the_requested_device(device):
    x, y = _teacher(300)
    r = tune.learning_rate(
        "standard", x, y, build_kwargs={"width": 8}, epochs=1, max_trials=2, device=device, verbose=0
    )
    assert r.best_lr is not None
    res = tune.recipe(x, y, epochs=2, max_trials=3, device=device, verbose=0)
    assert next(res.model.parameters()).device == device and res.config["device"] == device


def test_log_and_saved_results_are_strict_json(tmp_path):
    """A diverged trial's NaN/inf figures are written as {"float": ...} (strict JSON) and read
    back as floats on resume."""
    import json

    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x @ rng.standard_normal(4)).astype(np.float32)[:, None] * 50
    log = tmp_path / "lr.jsonl"
    kw = dict(epochs=2, seed=0, log=log, verbose=0, optimizer="sgd", start=1e18, max_trials=3)
    first = fg.tune.learning_rate(lambda: fg.nn.Linear(4, 1), x, y, **kw)
    assert any(t["diverged"] for t in first.trials)
    text = log.read_text()
    assert '{"float": ' in text  # the diverged trial's non-finite figures, spelled out
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    again = fg.tune.learning_rate(lambda: fg.nn.Linear(4, 1), x, y, **kw)
    assert [t["lr"] for t in again.trials] == [t["lr"] for t in first.trials]
    for a, b in zip(again.trials, first.trials):
        assert (a["loss"] == b["loss"]) or (np.isnan(a["loss"]) and np.isnan(b["loss"]))
    json.dumps(fg.tune.strict_json(first.to_dict()), allow_nan=False)


def test_an_overfitting_signal_that_a_wider_network_beats_was_noise(monkeypatch):
    """overfit_patience: when the doubling after an overfitting signal beats the best metric
    so far, the signal was noise and the width keeps growing; with overfit_patience=0 the
    first signal ends the growth."""
    x, y = _teacher(1000)
    real = tune._Recipe.overfit

    def fake(self, t, prev, growing=False):  # a signal at width 40, which 80 then beats
        if growing and t["width"] == 40 and t["stage"] == "4 grow":
            return "rule fake: a signal made up by the test"
        return real(self, t, prev, growing)

    monkeypatch.setattr(tune._Recipe, "overfit", fake)
    res = tune.recipe(x, y, seed=0, verbose=0, overfit_patience=1)
    grow = [t for t in res.trials if t["stage"] == "4 grow"]
    widths = [t["width"] for t in grow]
    assert 40 in widths and 80 in widths and max(widths) > 80
    assert "overfitting signal at width 40" in grow[widths.index(40)]["decision"]
    assert "the overfitting signal at width 40 was noise: width 80 beats" in res.report
    res0 = tune.recipe(x, y, seed=0, verbose=0, overfit_patience=0)
    grow0 = [t for t in res0.trials if t["stage"] == "4 grow"]
    assert grow0[-1]["width"] == 40 and "overfitting at width 40 (rule fake" in grow0[-1]["decision"]


def test_overfit_patience_confirms_a_signal_with_one_more_doubling():
    """With overfit_patience=1 the doubling after an overfitting signal decides: it does not
    beat the best metric so far, so the signal stands and batchnorm goes in at its width."""
    x, y = _teacher(1000)
    res = tune.recipe(x, y, seed=0, verbose=0, overfit_patience=1)
    grow = [t for t in res.trials if t["stage"] == "4 grow"]
    signal = [t for t in grow if t["decision"].startswith("overfitting signal at width")]
    assert len(signal) == 1 and "overfit_patience=1" in signal[0]["decision"]
    assert grow[-1]["width"] == 2 * signal[0]["width"]
    assert f"overfitting confirmed from width {signal[0]['width']}; adding batchnorm" in grow[-1]["decision"]
    bn = [t for t in res.trials if t["stage"] == "5 batchnorm"]
    assert bn[0]["width"] == signal[0]["width"]
