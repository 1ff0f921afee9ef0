"""Fake training script of the experiments tests (the original suite's fake script), with switches for failures.

Args ``--trainds --valds --outputpath --epochs (10) --lr (0.1)``. numpy legacy seed 88; per epoch ``train =
U(0, 1.5) * scale``, ``val = U(0, train)``, ``f1 *= 1.01``, ``scale *= scale``. Writes ``results.json`` (lists
``train_rmse``, ``val_rmse``, ``val_f1``; scalars ``epochs``, ``train_ds``, ``val_ds``, ``lr``), a plot under
``plots/`` and ``$FAKE_DETECT_JSON`` as ``output.json``.

Environment switches: ``FAKE_CALL_LOG`` (append one line per start), ``FAKE_CRASH_LR`` (with that lr: 300 lines to
stderr, exit 3), ``FAKE_SLEEP_LR`` (with that lr: write ``FAKE_PID_FILE`` and sleep 120 s).
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--trainds", required=True)
parser.add_argument("--valds", default="")
parser.add_argument("--outputpath", required=True)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()

if os.environ.get("FAKE_CALL_LOG"):
    with open(os.environ["FAKE_CALL_LOG"], "a") as fh:
        fh.write(f"{os.path.basename(args.trainds)} lr={args.lr}\n")
if os.environ.get("FAKE_CRASH_LR") and float(os.environ["FAKE_CRASH_LR"]) == args.lr:
    for i in range(300):
        print(f"error line {i}", file=sys.stderr)
    sys.exit(3)
if os.environ.get("FAKE_SLEEP_LR") and float(os.environ["FAKE_SLEEP_LR"]) == args.lr:
    with open(os.environ["FAKE_PID_FILE"], "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(120)

np.random.seed(88)  # noqa: NPY002 - the original fake script's legacy stream gives the expected numbers
scale, f1 = 0.995, 0.1
train_rmse, val_rmse, val_f1 = [], [], []
for _ in range(args.epochs):
    train = np.random.uniform(0, 1.5) * scale  # noqa: NPY002
    val = np.random.uniform(0, train)  # noqa: NPY002
    f1 *= 1.01
    scale *= scale
    train_rmse.append(train)
    val_rmse.append(val)
    val_f1.append(f1)
print(f"final train_rmse={train_rmse[-1]}")

results = {
    "train_rmse": train_rmse,
    "val_rmse": val_rmse,
    "val_f1": val_f1,
    "epochs": args.epochs,
    "train_ds": args.trainds,
    "val_ds": args.valds,
    "lr": args.lr,
}
with open(os.path.join(args.outputpath, "results.json"), "w") as fh:
    json.dump(results, fh)
os.makedirs(os.path.join(args.outputpath, "plots"))
with open(os.path.join(args.outputpath, "plots", "rmse.csv"), "w") as fh:
    fh.writelines(f"{i},{t},{v}\n" for i, (t, v) in enumerate(zip(train_rmse, val_rmse)))
if os.environ.get("FAKE_DETECT_JSON"):
    shutil.copyfile(os.environ["FAKE_DETECT_JSON"], os.path.join(args.outputpath, "output.json"))
