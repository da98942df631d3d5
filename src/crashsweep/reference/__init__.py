"""The executable specification (DESIGN §2): CrashSafe<Map> and its checker.

This package is the contract; it imports nothing else of crashsweep.
"""

from crashsweep.reference._checker import (
    OUTCOMES_ALLOWED,
    VIOLATION_KINDS,
    CrashWindow,
    Diff,
    Verdict,
    check_reads,
    check_recovered,
    check_recovered_windows,
    check_refusal,
)
from crashsweep.reference._history import History, item_hash, map_hash
from crashsweep.reference._ops import (
    MUTATING_KINDS,
    OP_KINDS,
    Op,
    OpFormatError,
    decode_bytes,
    decode_op,
    decode_ops,
    delete,
    encode_bytes,
    encode_op,
    encode_ops,
    get,
    put,
    sync,
)

__all__ = [
    "CrashWindow", "Diff", "History", "MUTATING_KINDS", "OP_KINDS", "OUTCOMES_ALLOWED", "Op",
    "OpFormatError", "VIOLATION_KINDS", "Verdict", "check_reads", "check_recovered", "check_recovered_windows", "check_refusal",
    "decode_bytes", "decode_op", "decode_ops", "delete", "encode_bytes", "encode_op", "encode_ops",
    "get", "item_hash", "map_hash", "put", "sync",
]
