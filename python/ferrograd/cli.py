"""The `ferrograd` command line: `ferrograd train --arch standard --epochs 5 ...`,
`ferrograd tune lr ...` (the learning-rate search), `ferrograd tune recipe ...` (the tuning
recipe; see `ferrograd.tune`) and `ferrograd export model.safetensors model.onnx`."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import models, onnx, optim, tune
from ._core import manual_seed, set_num_threads
from .data import load_mnist
from .distributed import is_main
from .io import load, save
from .train import fit


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ferrograd", description="Train feed-forward networks on MNIST.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train a network and print a Keras-style log",
        description="Train a network on MNIST and print a Keras-style log. On several processes or "
        "machines, start it under MPI: `mpirun -n 4 ferrograd train ...` (or `mpirun --hostfile hosts "
        "-n 8 ...`, `srun ...`; needs mpi4py: pip install ferrograd[mpi]). It then trains "
        "data-parallel: --batch-size is the global batch, split across the processes (a multiple of "
        "their number); one process prints the log and writes --save and --plot.",
    )
    t.add_argument("--arch", choices=["standard", "residual", "selu"], default="standard")
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--lr", type=float, default=0.001, help="learning rate (tune this first: double or halve)")
    t.add_argument("--optimizer", choices=sorted(optim.OPTIMIZERS), default="adam")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data", default=None, help="folder with MNIST IDX files (default: the bundled sample)")
    t.add_argument("--kind", default="t10k", help="IDX file prefix in --data (t10k or train)")
    t.add_argument("--validation-split", type=float, default=0.2)
    t.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    t.add_argument("--save", default=None, help="write the trained model (safetensors) here")
    t.add_argument("--plot", default=None, help="write training curves (PNG) here; needs matplotlib")
    ex = sub.add_parser(
        "export",
        help="export a saved model to ONNX",
        description="Write a model saved by ferrograd (model.save / fg.save) as an ONNX file for "
        "inference (needs the onnx package).",
    )
    ex.add_argument("model", help="the saved model (.safetensors)")
    ex.add_argument("output", help="the ONNX file to write")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    tn = sub.add_parser("tune", help="tune hyperparameters: the learning rate (lr) or the whole recipe")
    tsub = tn.add_subparsers(dest="tune_command", required=True)
    lr = tsub.add_parser("lr", help="learning-rate search: double or halve from 0.001")
    rc = tsub.add_parser("recipe", help="the tuning recipe: lr, width until overfit, batchnorm, dropout")
    for q in (lr, rc):
        _tune_options(q)
    lr.add_argument("--start", type=float, default=tune.START_LR, help="first learning rate (default 0.001)")
    lr.add_argument("--width", type=int, default=None, help="hidden width (default: the train command's)")
    lr.add_argument("--depth", type=int, default=None, help="depth (default: the train command's)")
    rc.add_argument(
        "--depth", type=int, default=None, help="fixed depth (default: 2, 2 blocks, 4 SELU layers)"
    )
    return p


def _tune_options(q: argparse.ArgumentParser) -> None:
    """The options `tune lr` and `tune recipe` share (those of `train`, and the budget)."""
    q.add_argument("--arch", choices=["standard", "residual", "selu"], default="standard")
    q.add_argument("--optimizer", choices=sorted([*optim.OPTIMIZERS, "momentum", "nesterov"]), default="adam")
    q.add_argument("--device", default=None, help="where trials run: cpu or gpu (default: cpu)")
    q.add_argument("--budget", type=float, default=None, help="time budget in seconds")
    q.add_argument("--max-trials", type=int, default=None, help="most trials (default: the function's)")
    q.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: about 1000 steps)")
    q.add_argument("--steps", type=int, default=None, help="optimizer steps per trial (instead of --epochs)")
    q.add_argument("--batch-size", type=int, default=128)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--data", default=None, help="MNIST IDX folder, or a .npz with arrays x and y (default: MNIST)"
    )
    q.add_argument("--kind", default="t10k", help="IDX file prefix in --data (t10k or train)")
    q.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    q.add_argument(
        "--loss", default=None, help="cross_entropy, binary_cross_entropy or mse (default: from y)"
    )
    q.add_argument("--metric", default="val_loss", help="what decides (default val_loss)")
    q.add_argument("--validation-split", type=float, default=0.2)
    q.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    q.add_argument("--log", default=None, help="JSON-lines trial log; rerunning with it resumes the search")
    q.add_argument(
        "--save", default=None, help="lr: the result as JSON; recipe: the final model (safetensors)"
    )
    q.add_argument("--report", default=None, help="write a Markdown report here")
    q.add_argument(
        "--plot", default=None, help="write the plot here (PNG needs matplotlib; .svg always works)"
    )


def build(arch: str, in_features: int, out_features: int):
    """The CLI's networks: the builders' defaults (Standard 784-512-512-10, dropout 0.2;
    Residual width 256, 10 blocks of 2, dropout 0.1; SELU 8 x 256, AlphaDropout 0.05)."""
    if arch == "standard":
        return models.standard(in_features, out_features)
    if arch == "residual":
        return models.residual(in_features, out_features)
    return models.self_normalizing(in_features, out_features)


def _export(args) -> int:
    """`ferrograd export MODEL OUTPUT`: the saved model as ONNX, its input width read from
    its first layer."""
    try:
        model = load(args.model)
        width = _input_width(model)
        onnx.export(model, np.zeros((1, width), np.float32), args.output, opset=args.opset)
    except (OSError, ValueError, TypeError, ImportError) as e:
        print(f"ferrograd: {e}", file=sys.stderr)
        return 2
    print(f"Exported {args.model} to {args.output}")
    return 0


def _input_width(model) -> int:
    """The feature count the first layer of `model` takes."""
    for m in model.modules():
        width = getattr(m, "in_features", None) or getattr(m, "num_features", None)
        if isinstance(width, int):
            return width
        kernel = getattr(m, "kernel", None)
        if kernel is not None:
            return int(kernel.shape[0])
    raise ValueError("export: cannot tell the model's input width from its layers")


def main(argv: list[str] | None = None) -> int:
    """The `ferrograd` command: `ferrograd train ...`, `ferrograd tune lr ...`, `ferrograd tune
    recipe ...` (see --help); returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "export":
        return _export(args)
    if args.threads:
        set_num_threads(args.threads)
    if args.command == "tune":
        return _tune(args)
    manual_seed(args.seed)  # the same on every rank under MPI: the same initial weights
    try:
        x, y = load_mnist(args.data, kind=args.kind)
    except (OSError, ValueError) as e:
        print(f"ferrograd: {e}", file=sys.stderr)
        return 2
    model = build(args.arch, x.shape[1], int(y.max()) + 1)
    opt = optim.get(args.optimizer, model.parameters(), args.lr)
    history = fit(
        model,
        x,
        y,
        loss="cross_entropy",
        optimizer=opt,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
    )
    if not is_main():  # under MPI every rank holds the same model: rank 0 writes it
        return 130 if history.interrupted else 0
    if args.save:
        model.save(args.save, optimizer=opt)
        print(f"Saved model to {args.save}")
    if args.plot:
        try:
            history.plot(args.plot)
            print(f"Saved training curves to {args.plot}")
        except ImportError as e:
            print(f"ferrograd: {e}", file=sys.stderr)
    return 130 if history.interrupted else 0


def _load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.data is not None and str(args.data).endswith(".npz"):
        with np.load(args.data) as f:
            x, y = f["x"], f["y"]
    else:
        x, y = load_mnist(args.data, kind=args.kind)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    return x, y


def _tune(args: argparse.Namespace) -> int:
    """`ferrograd tune lr|recipe`: runs `ferrograd.tune.learning_rate` or `.recipe`."""
    try:
        x, y = _load(args)
    except (OSError, ValueError, KeyError) as e:
        print(f"ferrograd: {e}", file=sys.stderr)
        return 2
    common = dict(
        loss=args.loss,
        optimizer=args.optimizer,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        time_budget=args.budget,
        seed=args.seed,
        validation_split=args.validation_split,
        metric=args.metric,
        device=args.device,
        log=args.log,
    )
    if args.max_trials is not None:
        common["max_trials"] = args.max_trials
    report: str
    if args.tune_command == "lr":
        kw: dict = {}
        if args.width is not None:
            kw["width"] = args.width
        if args.depth is not None:
            kw["blocks" if args.arch == "residual" else "depth"] = args.depth
        search = tune.learning_rate(args.arch, x, y, build_kwargs=kw, start=args.start, **common)
        report = f"# Learning-rate search\n\n```\n{search.table()}\n```\n"
        if args.save:
            with open(args.save, "w", encoding="utf-8") as f:
                json.dump(tune.strict_json(search.to_dict()), f, indent=1, allow_nan=False)
            print(f"Saved the search to {args.save}")
        result: tune.LRSearch | tune.RecipeResult = search
        code = 1 if search.best_lr is None else 0
    else:
        res = tune.recipe(x, y, architecture=args.arch, depth=args.depth, **common)
        report = res.report
        if args.save:
            save(res.model, args.save)
            print(f"Saved the final model to {args.save}")
        result, code = res, 0
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(report)
        print(f"Saved the report to {args.report}")
    if args.plot:
        try:
            result.plot(args.plot)
            print(f"Saved the plot to {args.plot}")
        except ImportError as e:
            print(f"ferrograd: {e}", file=sys.stderr)
    return 130 if result.interrupted else code


if __name__ == "__main__":
    sys.exit(main())
