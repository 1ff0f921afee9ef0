"""Event and label file formats: DAT, EVT 2.0, EVT 3.0, HDF5 events, HDF5 features and dense flow labels.

Submodules: :mod:`~opsin.eventflow.io.dat`, :mod:`~opsin.eventflow.io.evt2`, :mod:`~opsin.eventflow.io.evt3`,
:mod:`~opsin.eventflow.io.h5_events`, :mod:`~opsin.eventflow.io.h5_features`, :mod:`~opsin.eventflow.io.flow_labels`,
:mod:`~opsin.eventflow.io.flow_formats` (.flo, DSEC PNG, .npy), :mod:`~opsin.eventflow.io.mvsec` (MVSEC sequences to
DAT + flow labels);
:func:`open_events` picks the reader of a recording.
"""

from opsin.eventflow.io import dat, evt2, evt3, flow_formats, flow_labels, h5_events, h5_features, mvsec
from opsin.eventflow.io._open import EVENT_SUFFIXES, is_event_file, open_events, read_raw
from opsin.eventflow.io._reader import ArrayEventReader, EventReader
from opsin.eventflow.io.dat import DatReader, DatWriter, read_dat, write_dat
from opsin.eventflow.io.evt2 import encode_evt2, read_evt2, write_evt2
from opsin.eventflow.io.evt3 import read_evt3
from opsin.eventflow.io.flow_labels import (
    FlowLabels,
    FlowLabelsReader,
    check_flow_file,
    flow_for_interval,
    label_path_for,
    read_flow_labels,
    write_flow_labels,
)
from opsin.eventflow.io.h5_events import H5EventsReader, read_h5_events, write_h5_events
from opsin.eventflow.io.h5_features import FeatureWriter, H5FeaturesReader, write_features
from opsin.eventflow.io.mvsec import MvsecConversion, convert_mvsec

__all__ = [
    "EVENT_SUFFIXES",
    "ArrayEventReader",
    "DatReader",
    "DatWriter",
    "EventReader",
    "FeatureWriter",
    "FlowLabels",
    "FlowLabelsReader",
    "H5EventsReader",
    "H5FeaturesReader",
    "MvsecConversion",
    "check_flow_file",
    "convert_mvsec",
    "dat",
    "encode_evt2",
    "evt2",
    "evt3",
    "flow_for_interval",
    "flow_formats",
    "flow_labels",
    "h5_events",
    "h5_features",
    "is_event_file",
    "label_path_for",
    "mvsec",
    "open_events",
    "read_dat",
    "read_evt2",
    "read_evt3",
    "read_flow_labels",
    "read_h5_events",
    "read_raw",
    "write_dat",
    "write_evt2",
    "write_features",
    "write_flow_labels",
    "write_h5_events",
]
