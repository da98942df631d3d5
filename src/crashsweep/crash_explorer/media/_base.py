"""What every medium provides to the explorer. Everything medium-specific goes through one of these."""

from __future__ import annotations

import contextlib
import random


class Medium:
    """One medium. Example: `medium_of(context).points_of(context, log, history)`.

    Invariants every implementation keeps: `new_log` and `points_of` agree on the log's type; a target is used
    by one engine for one state; `let_go` leaves nothing of the engine running or on disk but its results.
    """

    name = ""
    unit_word = "block"          # what a tear unit is called in explanations ("sector" on the block device)
    explain_as = "fs"            # the vocabulary of fates: "block" or "fs"
    memoizable = False           # may an observation memo answer states (`new_memo`, `memo_target`)
    memo_logs = False            # does a memo walk reproduce the run's log (`walked_run`): states that crash again
    corruption = False           # may corruption faults be injected
    recording_slowdown = 1       # how much slower the recording runs than the engine (its time limit scales)
    prepares_ahead = False       # may `ahead` prepare a later state's target while an engine works
    target_draws_on_rng = False  # does a target use the state's rng (then a state's result depends on its seed)

    def new_log(self, context, traced: bool = True):
        """An empty log for a run. `traced`: the run's I/O is needed (a recording, or a state crashed again)."""
        raise NotImplementedError

    def new_target(self, context, image, rng: random.Random, log, random_seed: str = "0"):
        """What the engine opens on, holding `image` (None: the empty medium of a recording)."""
        raise NotImplementedError

    def new_memo(self):
        """An empty observation memo of this medium's calls (`disk_model/_memo.py`); only when `memoizable`."""
        raise NotImplementedError

    def memo_target(self, context, image, rng_seed: str, traced: bool = False):
        """What a memo walk answers a state's calls from: `image`, as the engine's target would hold it, with
        the rng a live run of the state would have (`random.Random(rng_seed)`, if the target draws on it).
        `traced`: the state crashes again, so the walk must log the run (`walked_run`)."""
        raise NotImplementedError

    def walked_run(self, target):
        """(the log, the rng) of a walk's target once the walk has answered a whole run: what a live run
        would have logged and left of its rng. Only when `memo_logs`."""
        raise NotImplementedError

    def engine_scope(self, context, target):
        """The context manager around every call into the engine."""
        raise NotImplementedError

    def hold(self, context):
        """The context manager around one whole state, its nested states included (its engine calls' own
        `engine_scope`s nest inside it). Beside the engine, only the explorer's in-memory work runs in it: checks,
        planning a continuation's crash states, building their images — never a file of its own."""
        return contextlib.nullcontext()

    def let_go(self, context, engine: list) -> None:
        """Drop a crashed engine (`engine` holds its last reference) so nothing it does on the way out counts."""
        raise NotImplementedError

    def ahead(self, context, upcoming) -> None:
        """`upcoming.get()` is the next state's image (a snapshot that stays valid, built on the first call):
        the medium may build and prepare its target while the current state's engine works. Only called when
        `prepares_ahead`."""

    def forget_ahead(self) -> None:
        """Drop whatever `ahead` prepared and no target took (a unit's end)."""

    def points_of(self, context, log, history, ops_offset: int = 0):
        raise NotImplementedError

    def log_shape(self, context, log):
        """What of `log` its crash points and the states planned at them depend on — all but the bytes written
        (hashable) — or None where the medium does not say (every continuation is planned anew)."""
        return None

    def durable_of(self, context, walk, log, base=None, hashed: bool = True):
        raise NotImplementedError
