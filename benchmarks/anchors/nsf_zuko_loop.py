"""zuko's neural spline flow trained the way zuko's own documentation trains a flow, as its own
script (the anchor of benchmarks/nsf_vs_zuko_loop.py, which times it as a subprocess, start to
exit). Imports torch and zuko only.

The loop is zuko's README/tutorial loop: `flow = zuko.flows.NSF(...)` (built as the MAF that
zuko.flows.NSF is, with the spline's `--bound` open: zuko's NSF fixes it at 5),
`optimizer = torch.optim.Adam(flow.parameters(), lr=...)`, a shuffled DataLoader of batches and
`loss = -flow().log_prob(x).mean()`, `zero_grad`, `backward`, `step`. Beside it, what
`contender=nsf` does too, so the two fit the same model the same way: the data standardised once
by the training split's mean and std (std unbiased, at least 1e-6), z = (x − m)/σ, so
log p(x) = log p_flow(z) − Σ_d log σ_d; the NSF of src/models/zuko_flows.py (`passes=2`:
couplings); a cosine decay of the learning rate stepped once per epoch (`--cosine`), one torch
thread, `torch.manual_seed(seed)` before the flow is built.

The data are the framework's own splits, read from `--data` (a .pt file with `train`, `val`,
`test` and the truth's log-density `val_truth`, `test_truth`, float32), which
benchmarks/nsf_vs_zuko_loop.py writes through the framework's data module for the same
`data=<toy> seed=<seed>`. Every `--eval-every` steps (default: once per epoch, as the framework
validates) it scores the validation KL gap, mean(log p_truth − log p_model), and records
(seconds since training started, step, gap); the clock starts before the first step and
includes these evaluations, as the framework's curve.csv does. At the end it prints one JSON
object: the settings, `steps`, `train_seconds` (the clock at the last evaluation), the final
`val_kl_gap`, `test_kl_gap` and the `curve`.

    python benchmarks/anchors/nsf_zuko_loop.py --data splits.pt [--epochs 30] [--lr 3e-3]
        [--batch-size 512] [--transforms 4] [--hidden-features 64 64] [--bins 8]
        [--bound 5]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from functools import partial

import torch
import zuko
from torch.utils.data import DataLoader
from zuko.transforms import MonotonicRQSTransform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the .pt file of splits and truth")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--cosine", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--fused", action="store_true", help="Adam(fused=True), as conf/optimizer")
    parser.add_argument("--transforms", type=int, default=4)
    parser.add_argument("--hidden-features", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--bound", type=float, default=5.0, help="the splines act on [-B, B]")
    parser.add_argument("--eval-every", type=int, default=0, help="steps; 0: once per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = torch.load(args.data)
    train, val, test = data["train"], data["val"], data["test"]
    shift, scale = train.mean(0), train.std(0).clamp_min(1e-6)
    log_det = -scale.log().sum()  # log |det ∂z/∂x| of z = (x − m)/σ

    def standardize(x: torch.Tensor) -> torch.Tensor:
        return (x - shift) / scale

    torch.manual_seed(args.seed)
    spline = partial(MonotonicRQSTransform, bound=args.bound, slope=1e-3)
    flow = zuko.flows.MAF(
        train.shape[1],
        transforms=args.transforms,
        hidden_features=tuple(args.hidden_features),
        passes=2,
        univariate=spline,
        shapes=[(args.bins,), (args.bins,), (args.bins - 1,)],
    )
    optimizer = torch.optim.Adam(flow.parameters(), lr=args.lr, fused=args.fused or None)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
        if args.cosine
        else None
    )
    trainset = DataLoader(standardize(train), batch_size=args.batch_size, shuffle=True)
    steps_per_epoch = len(trainset)
    eval_every = args.eval_every or steps_per_epoch
    z_val, z_test = standardize(val), standardize(test)

    @torch.no_grad()
    def kl_gap(z: torch.Tensor, truth: torch.Tensor) -> float:
        log_p = flow().log_prob(z).double() + log_det
        return (truth.double() - log_p).mean().item()

    curve: list[dict[str, float]] = []
    step = 0
    start = time.perf_counter()
    for _ in range(args.epochs):
        for x in trainset:
            loss = -flow().log_prob(x).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % eval_every == 0:
                gap = kl_gap(z_val, data["val_truth"])
                seconds = time.perf_counter() - start
                curve.append({"seconds": round(seconds, 4), "step": step, "val_kl_gap": gap})
        if scheduler is not None:
            scheduler.step()
    if not curve or curve[-1]["step"] != step:
        gap = kl_gap(z_val, data["val_truth"])
        seconds = time.perf_counter() - start
        curve.append({"seconds": round(seconds, 4), "step": step, "val_kl_gap": gap})
    test_gap = kl_gap(z_test, data["test_truth"])
    summary = {
        "settings": vars(args) | {"steps_per_epoch": steps_per_epoch},
        "steps": step,
        "train_seconds": curve[-1]["seconds"],
        "val_kl_gap": curve[-1]["val_kl_gap"],
        "test_kl_gap": test_gap,
        "finite": math.isfinite(test_gap),
        "curve": curve,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
