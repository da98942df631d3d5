"""The regression corpus: minimized traces of earlier failure classes, re-checked first by every sweep.

Like Hypothesis's example database, a sweep remembers what failed, so that the next
sweep (after a fix, or on a CI machine with a smaller budget) checks those first:

    .crashsweep/                       beside the project (the current directory; --corpus DIR)
      README.md                        what this directory is
      corpus/<engine>[-<options digest>]/<class id>.json
                                       one minimized trace per failure class (plain, sorted JSON)

It is small (a few KB a class, `ENTRIES_MAX` per engine) and git-friendly: commit it
to share known failures with CI, or add it to .gitignore. A sweep re-checks the entries
of its engine first ("2 earlier failures re-checked: 1 fixed, 1 still failing"): an
entry that no longer fails (its state passes, or its operation's crash states all pass
after the engine's I/O changed) is removed; one that still fails stays and fails the
sweep (exit 1). After the sweep, each class's minimized trace is added.

Invariants: entries are data (loaded with `load_trace`, which imports nothing); a
malformed entry is skipped and reported, never fatal; only files named `*.json` under
`corpus/` are ever written or removed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil

from crashsweep.crash_explorer._trace import load_trace
from crashsweep.crash_explorer.errors import ExplorerError

CORPUS_DEFAULT = ".crashsweep"
CORPUS_ENVIRONMENT = "CRASHSWEEP_CORPUS"     # overrides the default (a test suite points it at a temporary place)


def corpus_default() -> str:
    return os.environ.get(CORPUS_ENVIRONMENT) or CORPUS_DEFAULT
ENTRIES_MAX = 50
README = """# crashsweep's regression corpus

Minimized traces of the failure classes earlier sweeps found, one JSON file per class under
`corpus/<engine>/`. Every `crashsweep sweep` of the same engine re-checks them first and says how many
are fixed and how many still fail; fixed entries are removed, new classes added. Commit this directory
to share known failures with CI (like Hypothesis's `.hypothesis/`), or list it in `.gitignore`.
Each file is an ordinary trace: `crashsweep replay FILE` and `crashsweep explain FILE` work on it.
"""


def engine_slug(engine: str, options=()) -> str:
    """A directory name for an engine and its options ("json_kv.py:JsonKV" -> "json_kv.py-JsonKV"; with options,
    a digest of them is appended: `--option bug=x` is another engine)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", engine).strip("-.")[:120] or "engine"
    if options:
        text = "\n".join(f"{key}={value}" for key, value in sorted(dict(options).items()))
        slug += "-" + hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return slug


class Corpus:
    """Example: `corpus = Corpus(".crashsweep"); corpus.entries("betree"); corpus.add(trace_path, "betree", id)`."""

    def __init__(self, root: str = CORPUS_DEFAULT):
        self.root = root

    def directory(self, engine: str, options=()) -> str:
        return os.path.join(self.root, "corpus", engine_slug(engine, options))

    def entries(self, engine: str, options=()) -> list[str]:
        """Paths of the entries of this engine with these options, sorted (the order they are re-checked in)."""
        directory = self.directory(engine, options)
        if not os.path.isdir(directory):
            return []
        return [os.path.join(directory, name) for name in sorted(os.listdir(directory))
                if name.endswith(".json") and os.path.isfile(os.path.join(directory, name))][:ENTRIES_MAX]

    def load(self, path: str):
        """(spec, trace), or None for an entry that is not a valid trace (it is left alone)."""
        try:
            return load_trace(path)
        except ExplorerError:
            return None

    def add(self, trace_path: str, engine: str, class_id: str, options=()) -> str | None:
        """Keep a class's minimized trace; the entry's path (None when the engine already has ENTRIES_MAX)."""
        directory = self.directory(engine, options)
        target = os.path.join(directory, f"{re.sub(r'[^a-z0-9-]', '', class_id)[:40] or 'class'}.json")
        if not os.path.exists(target) and len(self.entries(engine, options)) >= ENTRIES_MAX:
            return None
        os.makedirs(directory, exist_ok=True)
        readme = os.path.join(self.root, "README.md")
        if not os.path.exists(readme):
            with open(readme, "w", encoding="utf-8") as handle:
                handle.write(README)
        temporary = target + ".tmp"
        shutil.copyfile(trace_path, temporary)
        os.replace(temporary, target)
        return target

    def remove(self, path: str) -> None:
        if path.endswith(".json") and os.path.dirname(os.path.dirname(path)) == os.path.join(self.root, "corpus"):
            try:
                os.remove(path)
            except OSError:
                pass
