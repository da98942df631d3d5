"""crashsweep: find crash-consistency bugs in storage engines before their users do.

A workload runs against an engine on a simulated disk that reorders I/O, tears
writes and loses power; every crash state the disk could really be left in is
recovered and checked against an executable reference model (CrashSafe<Map>).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
