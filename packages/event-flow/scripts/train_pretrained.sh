#!/usr/bin/env bash
# The command that trained the pretrained model shipped in opsin.eventflow.pretrained (see the package README's
# model card). Run from the repository root in an environment with opsin-event-flow installed, e.g.
#   nox -s "tests(event-flow)" --install-only && PATH=.nox/tests-event-flow/bin:$PATH \
#       bash packages/event-flow/scripts/train_pretrained.sh /tmp/pretrain
# It makes the synthetic data, precomputes event_cube features, trains, and writes the slim checkpoint into the
# package. Every step is seeded; on a 2-core CPU the whole run takes about an hour.
set -euo pipefail
work=${1:?usage: train_pretrained.sh WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"

# 1. Synthetic recordings (train/ val/ test/, 120x160, 2 s each, GT flow every 50 ms), clean and noisy sensors.
[ -d "$work/raw/train" ] || python "$here/make_pretrain_data.py" "$work/raw"

# 2. event_cube features of the training and validation recordings (one row per 50 ms).
opsin-eventflow precompute "$work/raw/train" --out-dir "$work/features/train" --preprocess event_cube --delta-t 50000 --workers 2
opsin-eventflow precompute "$work/raw/val" --out-dir "$work/features/val" --preprocess event_cube --delta-t 50000 --workers 2
# The ground truth goes beside the features, where the data module looks for X_flow.h5 labels of X.h5.
cp "$work"/raw/train/*_flow.h5 "$work/features/train/"

# 3. Training (supervised on the synthetic ground truth: see pretrained.yaml); val/ reports AEE while it trains.
opsin-eventflow fit --config "$here/pretrained.yaml" --data.data_dir "$work/features" \
    --data.test_data_dir "$work/raw/val" --trainer.default_root_dir "$work/runs"

# 4. Ship the last checkpoint without optimizer state.
python "$here/ship_pretrained.py" "$work/runs" packages/event-flow/src/opsin/eventflow/pretrained/eminet16_synth.ckpt
