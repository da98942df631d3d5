"""The native medium (DESIGN §3): an engine on a real directory, its system calls recorded into the
file-system log, crash states materialized as real directories."""

from crashsweep.disk_model.native._materialize import materialize
from crashsweep.disk_model.native._recorder import NativeRecorder, NativeRefusal, native_site
from crashsweep.disk_model.native._strace_lines import Call, StraceParser
from crashsweep.disk_model.native._tracer import Tracer, TracerMissing, python_program, strace_command

__all__ = ["Call", "NativeRecorder", "NativeRefusal", "StraceParser", "Tracer", "TracerMissing", "materialize",
           "native_site", "python_program", "strace_command"]
