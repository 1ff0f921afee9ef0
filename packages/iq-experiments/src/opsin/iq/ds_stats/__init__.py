"""Dataset statistics and exploratory HTML summaries (``DsStats``)."""

from opsin.iq.ds_stats._notebook import notebook_annots_summary, notebook_imgs_preview
from opsin.iq.ds_stats._stats import DsStats

__all__ = ["DsStats", "notebook_annots_summary", "notebook_imgs_preview"]
