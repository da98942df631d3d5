"""Essential fates: the smallest set of deviations from in-order persistence that still fails,
said as ALICE says it ("needs write A to persist before rename B").

At a crash point the pending units (file-system micro-ops or block writes) are in
issue order. *In-order persistence* keeps a prefix of them, whole. A failing state
deviates from that in three ways, and each deviation is a claim about what the
engine relies on:

- a torn unit — **atomicity**: "needs write(log) at store.py:91 to be atomic";
- a unit lost while a later one persisted — **ordering**: "needs write(db.json.tmp)
  at json_kv.py:28 to persist before rename at json_kv.py:29";
- in-order, yet data is lost — **durability**: the first lost unit whose persistence
  makes the state pass is what the engine assumed durable ("assumes rename ... durable
  once sync() returned: fsync the directory").

A deviation is *essential* when undoing it alone makes the state pass. The search
undoes deviations one at a time, keeping every undo after which the state still
fails (so the remaining ones are each necessary), then names the rest:

1. each torn unit: made whole, else lost, if the state still fails;
2. each lost unit that precedes a persisted one: persisted, if it still fails;
3. each persisted unit after a lost one (latest first): lost, if it still fails; one
   whose loss makes the state pass is the "after" of an ordering claim, and the lost
   units before it (each of which, persisted, made the state pass in step 2) its "before";
4. if no deviation is left: extend the persisted prefix one unit at a time until the
   state passes; that unit is the durability assumption.

Every candidate is normalized by the medium (a file-system model may not allow it as
given) and checked by recovering it in a worker process (`check`). The number of checks
is bounded (`CHECKS_MAX`); past it the explanation says it is incomplete.

Invariant: `explain_state` is deterministic for a recording and `check`; the
explanation's fates always form a state that fails (it is the last one checked to fail).
"""

from __future__ import annotations

from collections.abc import Callable

CHECKS_MAX = 64
NAMED_MAX = 3


class _Checker:
    def __init__(self, check: Callable[[dict], bool], normalize: Callable[[dict], dict]):
        self.check, self.normalize, self.checks = check, normalize, 0

    def fails(self, choice: dict) -> dict | None:
        """The normalized choice if that state still fails, else None (also past the check budget)."""
        if self.checks >= CHECKS_MAX:
            return None
        normalized = self.normalize(choice)
        self.checks += 1
        return normalized if self.check(normalized) else None


def _choice(persisted: set[int], torn: dict[int, list[int]], faults: list) -> dict:
    made: dict = {}
    if persisted:
        made["persist"] = sorted(persisted)
    if torn:
        made["torn"] = [[unit, list(pieces)] for unit, pieces in sorted(torn.items())]
    if faults:
        made["faults"] = list(faults)
    return made


def _parts(choice: dict) -> tuple[set[int], dict[int, list[int]], list]:
    return (set(choice.get("persist", ())), {unit: list(pieces) for unit, pieces in choice.get("torn", ())},
            list(choice.get("faults", ())))


def explain_state(pending: list[int], choice: dict, check: Callable[[dict], bool],
                  normalize: Callable[[dict], dict] = lambda choice: choice) -> dict:
    """{"choice": the essential state, "atomicity": [units], "ordering": [[before units], after unit],
    "durability": unit or None, "in_order": bool, "checks": n, "complete": bool}.
    Requires: `choice` is a failing state over `pending` (issue order)."""
    checker = _Checker(check, normalize)
    persisted, torn, faults = _parts(choice)
    originally = persisted | set(torn)
    atomic = []
    for unit in sorted(torn):                                       # 1. atomicity
        rest = {other: pieces for other, pieces in torn.items() if other != unit}
        for candidate in (_choice(persisted | {unit}, rest, faults), _choice(persisted, rest, faults)):
            kept = checker.fails(candidate)
            if kept is not None:
                persisted, torn, faults = _parts(kept)
                break
        else:
            atomic.append(unit)
    essential_before = set()
    for unit in pending:                                            # 2. persist lost units before landed ones
        landed = persisted | set(torn)
        if unit not in landed and any(other > unit for other in landed):
            kept = checker.fails(_choice(persisted | {unit}, torn, faults))
            if kept is not None:
                persisted, torn, faults = _parts(kept)
            else:
                essential_before.add(unit)
    essential_after = []
    for unit in reversed(pending):                                  # 3. drop landed units after lost ones
        landed = persisted | set(torn)
        if unit in persisted and unit in originally and any(other < unit and other not in landed
                                                            for other in pending):
            kept = checker.fails(_choice(persisted - {unit}, torn, faults))
            if kept is not None:
                persisted, torn, faults = _parts(kept)
            else:
                essential_after.append(unit)
    landed = persisted | set(torn)
    lost = [unit for unit in pending if unit not in landed]
    ordering = []
    for unit in sorted(essential_after):
        before = [other for other in lost if other < unit and other in essential_before] \
            or [other for other in lost if other < unit]
        if before and unit in persisted:
            ordering.append([before, unit])
    durability = None
    if not ordering and not atomic and lost:                         # 4. in order: what was assumed durable
        for index in range(len(lost)):
            if checker.checks >= CHECKS_MAX:
                break
            candidate = checker.normalize(_choice(persisted | set(lost[:index + 1]), torn, faults))
            checker.checks += 1
            if not checker.check(candidate):
                durability = lost[index]
                break
    return {"choice": _choice(persisted, torn, faults), "atomicity": [u for u in atomic if u in torn],
            "ordering": ordering, "durability": durability, "in_order": not ordering and not atomic,
            "lost": lost, "checks": checker.checks, "complete": checker.checks < CHECKS_MAX}


def _hint(name: str, medium: str) -> str:
    verb = name.split(" ", 1)[0]
    if medium == "block":
        return "a flush after it"
    if verb in ("create", "mkdir", "rename", "unlink"):
        return "an fsync of its directory"
    return "an fsync of the file"


def _calls(names: list[str]) -> list[str]:
    """Unit names as calls: a write's size change is part of its write ("write f [0, 9) (its file size, 9) at
    x.py:3" is said as the write when the write's data is named too); repeats dropped, order kept."""
    said = []
    for name in names:
        head, _, site = name.rpartition(" at ") if " at " in name else (name, "", "")
        base = head.partition(" (its file size")[0]
        if base != head:
            plain = f"{base} at {site}" if site else base
            if plain in names:
                name = plain
        if name not in said:
            said.append(name)
    return said


def sentences(explanation: dict, unit: Callable[[int], str], medium: str, sync_op: int | None) -> list[str]:
    """The explanation in words. `unit(id)` names a unit with its source line ("rename a -> b at x.py:29")."""
    said = []
    for unit_id in explanation["atomicity"]:
        said.append(f"needs {unit(unit_id)} to be atomic (atomicity): the state fails when only part of it lands")
    for before, after in explanation["ordering"]:
        names = _calls([unit(other) for other in before])
        named = ", ".join(names[:NAMED_MAX])
        more = f" (and {len(names) - NAMED_MAX} more)" if len(names) > NAMED_MAX else ""
        said.append(f"needs {named}{more} to persist before {unit(after)} (ordering)")
    if explanation["durability"] is not None:
        name = unit(explanation["durability"])
        when = f" once the sync at op {sync_op} returned" if sync_op is not None else ""
        said.append(f"assumes {name} durable{when} (durability): nothing made it durable; "
                    f"{_hint(name, medium)} would")
    elif explanation["in_order"] and not explanation["lost"]:
        said.append("fails with every pending write persisted in order (or none pending): the recovery logic is "
                    "wrong, not the order or durability of its I/O")
    elif explanation["in_order"]:
        said.append("fails in order whatever more of the pending writes persist: the recovery logic (or a write "
                    "made before this crash point) is wrong")
    if not explanation.get("complete", True):
        said.append(f"(explanation incomplete: stopped after {CHECKS_MAX} checks)")
    return said
