"""Self-contained HTML summaries for notebooks: image thumbnails and a sortable annotation table."""

from __future__ import annotations

import base64
import html
import os
from typing import Any

import cv2
import numpy as np
import pandas as pd

from opsin.core import atomic_write_text
from opsin.iq.datasets.ds_tools import find_image_folder, list_images
from opsin.iq.io import read_image

__all__ = ["notebook_annots_summary", "notebook_imgs_preview"]

_SORT_JS = """
<script>
function opsinSort(t, c) {
  var tb = t.tBodies[0], rows = Array.from(tb.rows), asc = t.dataset.col == c && t.dataset.dir != 'asc';
  rows.sort(function (a, b) {
    var x = a.cells[c].textContent, y = b.cells[c].textContent, nx = parseFloat(x), ny = parseFloat(y);
    var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return asc ? r : -r;
  });
  rows.forEach(function (r) { tb.appendChild(r); });
  t.dataset.col = c; t.dataset.dir = asc ? 'asc' : 'desc';
}
function opsinFilter(inp, id) {
  var q = inp.value.toLowerCase(), t = document.getElementById(id);
  Array.from(t.tBodies[0].rows).forEach(function (r) {
    r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
}
</script>
"""

_STYLE = (
    "<style>table.opsin{border-collapse:collapse;font:12px sans-serif}table.opsin td,table.opsin th"
    "{border:1px solid #ccc;padding:2px 6px}table.opsin th{cursor:pointer;background:#eee}"
    ".opsin-grid img{margin:2px}</style>"
)


def _show(html_text: str, show_inline: bool) -> None:
    if not show_inline:
        return
    try:
        from IPython.display import HTML, display
    except ImportError:
        return
    display(HTML(html_text))


def _thumb(arr: np.ndarray, size: int) -> str:
    x = arr.astype(np.float64)
    if arr.dtype != np.uint8:
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
        x = (x - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(x)
    img = np.clip(x, 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        img = img[..., :3] if img.shape[2] > 3 else img[..., 0]
    h, w = img.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", small)
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def notebook_imgs_preview(
    data_path: str,
    sample: int = 100,
    size: int = 100,
    export_html_filename: str | None = None,
    show_inline: bool = True,
) -> str:
    """A grid of thumbnails of the first ``sample`` images as standalone HTML (images embedded, no network).

    Args:
        data_path: a dataset folder or an image folder.
        sample: number of images.
        size: thumbnail size (longest side, pixels).
        export_html_filename: also write the HTML there.
        show_inline: display it when running in a notebook.

    Returns:
        The HTML document.
    """
    folder = data_path
    if not list_images(folder, warn=False):
        folder = find_image_folder(data_path)
    items = []
    for name in list_images(folder, warn=False)[: int(sample)]:
        arr, _ = read_image(os.path.join(folder, name))
        label = html.escape(name)
        items.append(f'<img title="{label}" alt="{label}" src="data:image/png;base64,{_thumb(arr, size)}">')
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(folder)}</title>{_STYLE}</head>"
        f"<body><h3>{html.escape(folder)} ({len(items)} images)</h3><div class='opsin-grid'>{''.join(items)}</div>"
        "</body></html>"
    )
    if export_html_filename:
        atomic_write_text(export_html_filename, doc)
    _show(doc, show_inline)
    return doc


def notebook_annots_summary(
    df: pd.DataFrame,
    fields_to_include: list[str] | None = None,
    export_html_filename: str | None = None,
    show_inline: bool = True,
) -> str:
    """An annotation table as standalone HTML with sortable columns and a filter box (inline script, no CDN).

    Args:
        df: the annotation table (e.g. from ``read_geojson`` or ``DsStats``).
        fields_to_include: columns to show (default: all but ``geometry``).
        export_html_filename: also write the HTML there.
        show_inline: display it when running in a notebook.

    Returns:
        The HTML document.
    """
    cols: list[Any] = list(fields_to_include or [c for c in df.columns if c != "geometry"])
    head = "".join(
        f"<th onclick=\"opsinSort(document.getElementById('opsin-annots'),{i})\">{html.escape(str(c))}</th>"
        for i, c in enumerate(cols)
    )
    body = []
    for _, row in df.iterrows():
        cells = "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in cols)
        body.append(f"<tr>{cells}</tr>")
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>annotations</title>{_STYLE}{_SORT_JS}</head><body>"
        f"<p>{len(df)} rows <input placeholder='filter' oninput=\"opsinFilter(this,'opsin-annots')\"></p>"
        f"<table class='opsin' id='opsin-annots'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>"
    )
    if export_html_filename:
        atomic_write_text(export_html_filename, doc)
    _show(doc, show_inline)
    return doc
