"""Export a job folder as a plain COCO dataset (``images/NNNNNN.png`` + ``annotations.json`` with ``file_name``).

The generator's ``labels.json`` has no ``file_name`` (as in the original); the exported copy names each image after
its ``frame_number``, so the folder is directly a dataset for the other opsin packages (one images folder + one COCO
json). Requires the ``[analysis]`` extra (OpenCV decodes the video).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from opsin.core import atomic_write_text

__all__ = ["job_to_coco"]


def job_to_coco(
    job_folder: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, images_dir: str = "images"
) -> Path:
    """Write the job's frames as ``<out_dir>/images/NNNNNN.png`` and ``<out_dir>/annotations.json``.

    Frames come from ``video.mp4`` (indexed by each image's ``frame_number``), or from ``video_preview.png`` for a
    one-frame preview. Images whose frame is missing from the video are dropped with their annotations.

    Args:
        job_folder: a downloaded job folder with ``labels.json``.
        out_dir: the dataset folder to create (may exist).
        images_dir: name of the images sub-folder.

    Returns:
        The path of the written ``annotations.json``.

    Raises:
        FileNotFoundError: no ``labels.json``, or neither a video nor a preview.
    """
    from opsin.synth.common.vis._deps import require_analysis

    require_analysis(__name__)
    import cv2

    from opsin.synth.common.vis.videos import parse_video_frames

    job = Path(job_folder)
    labels_path = job / "labels.json"
    if not labels_path.is_file():
        msg = f"{job} has no labels.json to export"
        raise FileNotFoundError(msg)
    labels = json.loads(labels_path.read_text(encoding="utf-8"))
    out = Path(out_dir)
    image_folder = out / images_dir
    image_folder.mkdir(parents=True, exist_ok=True)
    images = sorted(labels.get("images") or [], key=lambda im: int(im.get("frame_number", 0)))
    video, preview = job / "video.mp4", job / "video_preview.png"
    kept = []
    if video.is_file():
        frames = parse_video_frames(video)
        for image in images:
            number = int(image.get("frame_number", 0))
            if number >= len(frames):
                continue
            name = f"{number:06d}.png"
            cv2.imwrite(str(image_folder / name), cv2.cvtColor(frames[number], cv2.COLOR_RGB2BGR))
            kept.append({**image, "file_name": name})
    elif preview.is_file():
        for image in images[:1]:
            name = f"{int(image.get('frame_number', 0)):06d}.png"
            shutil.copyfile(preview, image_folder / name)
            kept.append({**image, "file_name": name})
    else:
        msg = f"{job} has neither video.mp4 nor video_preview.png"
        raise FileNotFoundError(msg)
    kept_ids = {image["id"] for image in kept}
    dataset = {
        **labels,
        "images": kept,
        "annotations": [a for a in labels.get("annotations") or [] if a.get("image_id") in kept_ids],
    }
    target = out / "annotations.json"
    atomic_write_text(target, json.dumps(dataset))
    return target
