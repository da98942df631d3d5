"""The media (DESIGN §3), one sub-package each: `block/` (the simulated block device, fault plans, the I/O
event log, the real-file device), `fs/` (the POSIX file-system model), `native/` (system-call recording,
materialized states)."""

from crashsweep.disk_model.block._events import (
    COMPLETE, FLUSH, OP_BEGIN, OP_END, OP_SETUP, READ, SUBMIT, WRITE, Event, EventLog,
)
from crashsweep.disk_model.block._faults import (
    CORRUPTION_FAULTS, CRASH_FAULTS, DEFAULT_FAULTS, FAULT_KINDS, FaultPlan,
)
from crashsweep.disk_model.fs._calls import CallMemo, MemoWalk, SessionCalls
from crashsweep.disk_model.fs._tree_files import TreeFiles
from crashsweep.disk_model.fs._image import ROOT_INODE, STORE_PATH, FsTree
from crashsweep.disk_model.fs._interpose import Interposer, InterpositionBypass
from crashsweep.disk_model.fs._log import FS_BLOCK_BYTES, FsLog, FsOp
from crashsweep.disk_model.fs._persistence import FS_MODEL_DEFAULT, FS_MODELS, PersistenceModel
from crashsweep.disk_model.fs._session import FsSession, shared_session
from crashsweep.disk_model.block._interface import (
    SECTOR_COUNT_DEFAULT, SECTOR_SIZE_DEFAULT_BYTES, BlockDevice, check_geometry,
)
from crashsweep.disk_model.block._memory import MemoryBlockDevice
from crashsweep.disk_model.block._real_file import RealFileDevice
from crashsweep.disk_model.block._simulated import SimulatedBlockDevice
from crashsweep.disk_model.errors import DeviceIOError, DeviceRangeError, DiskModelError, FaultPlanError

__all__ = [
    "CallMemo", "MemoWalk", "SessionCalls", "TreeFiles",
    "FS_BLOCK_BYTES", "FS_MODELS", "FS_MODEL_DEFAULT", "FsLog", "FsOp", "FsSession", "FsTree", "Interposer",
    "InterpositionBypass", "PersistenceModel", "ROOT_INODE", "STORE_PATH", "shared_session",
    "BlockDevice", "COMPLETE", "CORRUPTION_FAULTS", "CRASH_FAULTS", "DEFAULT_FAULTS", "DeviceIOError",
    "DeviceRangeError", "DiskModelError", "Event", "EventLog", "FAULT_KINDS", "FLUSH", "FaultPlan",
    "FaultPlanError", "MemoryBlockDevice", "OP_BEGIN", "OP_END", "OP_SETUP", "READ", "RealFileDevice",
    "SECTOR_COUNT_DEFAULT", "SECTOR_SIZE_DEFAULT_BYTES", "SUBMIT", "SimulatedBlockDevice", "WRITE",
    "check_geometry",
]
