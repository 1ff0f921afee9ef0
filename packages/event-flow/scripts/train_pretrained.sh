#!/usr/bin/env bash
# The command that trained the pretrained model shipped in opsin.eventflow.pretrained (see the package README's
# model card). Run from the repository root in an environment with opsin-event-flow installed, e.g.
#   nox -s "tests(event-flow)" --install-only && PATH=.nox/tests-event-flow/bin:$PATH \
#       bash packages/event-flow/scripts/train_pretrained.sh /tmp/pretrain
# It makes the synthetic data, precomputes event_cube features, trains, and writes the slim checkpoint into the
# package. Every step is seeded; on a 2-core CPU the whole run takes about three hours.
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

# 3. Stage 1: opsin-eventflow fit, supervised on the synthetic ground truth (see pretrained.yaml), 1,428 steps.
opsin-eventflow fit --config "$here/pretrained.yaml" --data.data_dir "$work/features" \
    --data.test_data_dir "$work/raw/val" --trainer.default_root_dir "$work/runs"
python "$here/ship_pretrained.py" "$work/runs" "$work/stage1.ckpt"

cp "$work"/raw/val/*_flow.h5 "$work/features/val/"
# 4. Stage 2: multi-scale endpoint-error training from stage 1 (random 64x64 crops, the eight flips and transposes,
# one-cycle AdamW), validating on whole val/ recordings (their labels copied beside their features) every 500 steps;
# it keeps the checkpoint with the best validation AEE (never worse than its starting point).
python "$here/train_pretrained.py" "$work/features" "$work/stage2.ckpt" \
    --init "$work/stage1.ckpt" --steps 6000 --batch 8 --tbins 4 --crop 64 --lr 1e-3 --seed 123

# 5. Stage 3: 54 more recordings (block seeds 2001-2003; all of them train), a second one-cycle pass at half the
# peak learning rate; its best checkpoint is the shipped model.
python "$here/make_pretrain_data.py" "$work/raw2" --seed-offset 1000 --total 54
for split in train val test; do
    opsin-eventflow precompute "$work/raw2/$split" --out-dir "$work/features2" --preprocess event_cube --delta-t 50000 --workers 2
    cp "$work"/raw2/$split/*_flow.h5 "$work/features2/"
done
python "$here/train_pretrained.py" "$work/features" packages/event-flow/src/opsin/eventflow/pretrained/eminet16_synth.ckpt \
    --init "$work/stage2.ckpt" --extra-train "$work/features2" --steps 5000 --batch 8 --tbins 4 --crop 64 --lr 5e-4 \
    --seed 124
