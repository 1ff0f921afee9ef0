"""opsin-event-flow: optical flow for event cameras, trained self-supervised, with a pretrained model shipped.

Inference (:mod:`opsin.eventflow.inference`, :mod:`opsin.eventflow.pretrained`), the recurrent networks
(:mod:`opsin.eventflow.flow_network`, :mod:`opsin.eventflow.feature_extractor`, :mod:`opsin.eventflow.layers`),
warping and losses, the Lightning model and data module, evaluation metrics and visualisation, event and label
formats (:mod:`opsin.eventflow.io`), feature builders (:mod:`opsin.eventflow.preprocessing`), an event simulator
and synthetic scenes with exact flow. Importing the package itself does not import torch.
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
