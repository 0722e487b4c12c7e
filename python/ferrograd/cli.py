"""The `ferrograd` command line: `ferrograd train --arch standard --epochs 5 ...`."""

from __future__ import annotations

import argparse
import sys

from . import models, optim
from ._core import manual_seed, set_num_threads
from .data import load_mnist
from .train import fit


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ferrograd", description="Train feed-forward networks on MNIST.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a network and print a Keras-style log")
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
    return p


def build(arch: str, in_features: int, out_features: int):
    """The CLI's networks: the builders' defaults (Standard 784-512-512-10, dropout 0.2;
    Residual width 256, 10 blocks of 2, dropout 0.1; SELU 8 x 256, AlphaDropout 0.05)."""
    if arch == "standard":
        return models.standard(in_features, out_features)
    if arch == "residual":
        return models.residual(in_features, out_features)
    return models.self_normalizing(in_features, out_features)


def main(argv: list[str] | None = None) -> int:
    """The `ferrograd` command: `ferrograd train ...` (see --help); returns the exit code."""
    args = _parser().parse_args(argv)
    if args.threads:
        set_num_threads(args.threads)
    manual_seed(args.seed)
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


if __name__ == "__main__":
    sys.exit(main())
