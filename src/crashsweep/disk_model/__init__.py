"""Simulated devices (DESIGN §3): the block device, fault plans, the I/O event log, the real-file device."""

from crashsweep.disk_model._events import (
    COMPLETE, FLUSH, OP_BEGIN, OP_END, OP_SETUP, READ, SUBMIT, WRITE, Event, EventLog,
)
from crashsweep.disk_model._faults import (
    CORRUPTION_FAULTS, CRASH_FAULTS, DEFAULT_FAULTS, FAULT_KINDS, FaultPlan,
)
from crashsweep.disk_model._fs_calls import CallMemo, MemoWalk, SessionCalls
from crashsweep.disk_model._fs_tree_files import TreeFiles
from crashsweep.disk_model._fs_image import ROOT_INODE, STORE_PATH, FsTree
from crashsweep.disk_model._fs_interpose import Interposer, InterpositionBypass
from crashsweep.disk_model._fs_log import FS_BLOCK_BYTES, FsLog, FsOp
from crashsweep.disk_model._fs_persistence import FS_MODEL_DEFAULT, FS_MODELS, PersistenceModel
from crashsweep.disk_model._fs_session import FsSession, shared_session
from crashsweep.disk_model._interface import (
    SECTOR_COUNT_DEFAULT, SECTOR_SIZE_DEFAULT_BYTES, BlockDevice, check_geometry,
)
from crashsweep.disk_model._memory import MemoryBlockDevice
from crashsweep.disk_model._real_file import RealFileDevice
from crashsweep.disk_model._simulated import SimulatedBlockDevice
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
