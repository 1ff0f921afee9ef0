"""Make the synthetic training data of the shipped pretrained flow model (``opsin.eventflow.pretrained``).

The data come from the same generator as ``opsin-eventflow synth``: textured planes under affine, homography and
piecewise trajectories, simulated with the clean and the noisy sensor presets and three speed ranges, so that the model
sees a wide range of scenes, textures, motions and noise. Every sequence is seeded (same command, same files).

Usage: python packages/event-flow/scripts/make_pretrain_data.py OUT_DIR
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from opsin.eventflow.synthetic import make_dataset

# (preset, max speed in px/s, seed): each block is split into train/val/test by make_dataset. Speeds are in sensor
# pixels, so at 120x160 the displacements per 50 ms window (up to 15 px) and the texture scales in pixels match those
# of a 320x240 recording at the same speeds: a fully convolutional network trained here runs at any resolution.
BLOCKS = [
    ("clean", 120.0, 1001),
    ("clean", 300.0, 1002),
    ("noisy", 200.0, 1003),
    ("noisy", 300.0, 1004),
]


def main() -> None:
    """Generate the four blocks and merge them into train/, val/ and test/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--sequences-per-block", type=int, default=20)
    parser.add_argument("--duration-us", type=int, default=2_000_000)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument(
        "--seed-offset", type=int, default=0, help="added to every block's seed (1000 gives the second data set)"
    )
    parser.add_argument("--total", type=int, help="stop after this many sequences in all (the last block is cut)")
    args = parser.parse_args()
    left = args.total if args.total is not None else len(BLOCKS) * args.sequences_per_block
    for block, (preset, speed, seed) in enumerate(BLOCKS):
        count = min(args.sequences_per_block, left)
        if count <= 0:
            break
        left -= count
        seed += args.seed_offset
        tmp = args.out_dir / f".block{block}"
        make_dataset(
            tmp,
            count,
            height=args.height,
            width=args.width,
            duration_us=args.duration_us,
            delta_t=50_000,
            preset=preset,
            seed=seed,
            textures=("noise", "blobs", "checker"),
            max_speed=speed,
            show_progress=True,
        )
        # Give every block its own sequence numbers so the blocks can share train/, val/ and test/.
        for split_dir in sorted(p for p in tmp.iterdir() if p.is_dir()):
            dest = args.out_dir / split_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted(split_dir.iterdir()):
                f.rename(dest / f.name.replace("seq_", f"seq_b{block}_", 1))
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
