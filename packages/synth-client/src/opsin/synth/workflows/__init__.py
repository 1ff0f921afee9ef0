"""Workflow notebooks as saved reports and the steps they run.

``create_submit_notebook`` writes ``workflow_records/workflow_<stamp>/submit_batch_<stamp>.ipynb``; running it with
confirmation submits the batch and writes ``download_batch_<stamp>.ipynb`` beside it.
"""

from opsin.synth.workflows._notebooks import (
    create_download_notebook,
    create_submit_notebook,
    inject_parameters,
    new_workflow_folder,
    sanitize_batch_name,
    timestamp,
)
from opsin.synth.workflows._steps import (
    SubmissionRecord,
    batch_download_folder,
    download_and_report,
    portal_url,
    show_batch_media,
    submit_and_record,
)

__all__ = [
    "SubmissionRecord",
    "batch_download_folder",
    "create_download_notebook",
    "create_submit_notebook",
    "download_and_report",
    "inject_parameters",
    "new_workflow_folder",
    "portal_url",
    "sanitize_batch_name",
    "show_batch_media",
    "submit_and_record",
    "timestamp",
]
