"""opsin-event-flow: self-supervised optical flow for event cameras.

This release holds the data side: event and label formats (:mod:`opsin.eventflow.io`), feature builders
(:mod:`opsin.eventflow.preprocessing`), an event simulator (:mod:`opsin.eventflow.simulator`), synthetic scenes with
exact flow (:mod:`opsin.eventflow.synthetic`), the streaming loader (:mod:`opsin.eventflow.data`) and the Lightning
data module (:mod:`opsin.eventflow.data_module`). Importing the package itself does not import torch.
"""

from opsin.eventflow._events import EVENT_CD, EXT_TRIGGER, as_event_cd
from opsin.eventflow.errors import ConfigError, EventFlowError, FormatError
from opsin.eventflow.io import open_events
from opsin.eventflow.preprocessing import PREPROCESSING_DICT, CDProcessor, register_new_preprocessing

__version__ = "0.1.0"

__all__ = [
    "EVENT_CD",
    "EXT_TRIGGER",
    "PREPROCESSING_DICT",
    "CDProcessor",
    "ConfigError",
    "EventFlowError",
    "FormatError",
    "__version__",
    "as_event_cd",
    "open_events",
    "register_new_preprocessing",
]
