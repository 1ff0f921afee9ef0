"""opsin-core-utils: the thin layer every opsin package shares.

Logging setup, the error base class, data/cache folders, atomic writes and safe archive extraction, progress bars,
executors (local processes, threads, in-process, or a Dask cluster), seeded random streams and JSON helpers.
Nothing domain-specific lives here.
"""

from opsin.core._cli import CliError, ExitCode, OpsinGroup, exit_code_for, one_line
from opsin.core._executors import ExecutorSpecError, make_executor, map_unordered
from opsin.core._files import (
    DEFAULT_MAX_EXTRACT_BYTES,
    UnsafeArchiveError,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    commit_temp_file,
    replace_dir,
    safe_extract_zip,
    temp_sibling,
)
from opsin.core._jsonutil import OpsinJSONEncoder, dumps_json, to_jsonable
from opsin.core._lazy import lazy_exports
from opsin.core._logging import configure_logging, get_logger
from opsin.core._paths import cache_dir, data_dir
from opsin.core._pool import parallel_map, process_pool, refers_to_main, shutdown_pools
from opsin.core._progress import progress, progress_enabled
from opsin.core._rng import derive_seed, rng
from opsin.core.errors import OpsinError

__version__ = "0.1.0"

__all__ = [
    "CliError",
    "DEFAULT_MAX_EXTRACT_BYTES",
    "ExecutorSpecError",
    "ExitCode",
    "OpsinError",
    "OpsinGroup",
    "OpsinJSONEncoder",
    "UnsafeArchiveError",
    "__version__",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "cache_dir",
    "commit_temp_file",
    "configure_logging",
    "data_dir",
    "derive_seed",
    "dumps_json",
    "exit_code_for",
    "get_logger",
    "lazy_exports",
    "make_executor",
    "map_unordered",
    "one_line",
    "parallel_map",
    "process_pool",
    "progress",
    "progress_enabled",
    "refers_to_main",
    "replace_dir",
    "rng",
    "safe_extract_zip",
    "shutdown_pools",
    "temp_sibling",
    "to_jsonable",
]
