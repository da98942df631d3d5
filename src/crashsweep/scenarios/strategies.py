"""Hypothesis strategies for operation histories (needs the `hypothesis` package).

Example:

    from hypothesis import given
    from crashsweep.scenarios.strategies import operations

    @given(operations(max_size=40))
    def test_my_store_behaves_like_a_dict(ops): ...

Keys come from a small alphabet by default so that histories overwrite and
delete keys they wrote before (where engines go wrong); values range from empty
to several sectors. Shrinking goes towards fewer operations, shorter keys and
values, and puts rather than deletes.
"""

from __future__ import annotations

from hypothesis import strategies as st

from crashsweep.reference import Op, delete, get, put, sync

KEYS_DISTINCT_DEFAULT = 8
VALUE_BYTES_MAX_DEFAULT = 600


def keys(distinct: int = KEYS_DISTINCT_DEFAULT) -> st.SearchStrategy[bytes]:
    """Keys `k0`, `k1`, … from a pool of `distinct` names (small pools make collisions likely)."""
    return st.integers(min_value=0, max_value=distinct - 1).map(lambda number: b"k%d" % number)


def values(max_size: int = VALUE_BYTES_MAX_DEFAULT) -> st.SearchStrategy[bytes]:
    """Byte strings up to `max_size` long; a few very long ones span several sectors."""
    return st.one_of(st.binary(max_size=min(16, max_size)), st.binary(max_size=max_size))


def operations(max_size: int = 50, key_strategy: st.SearchStrategy[bytes] | None = None,
               value_strategy: st.SearchStrategy[bytes] | None = None,
               with_sync: bool = True) -> st.SearchStrategy[list[Op]]:
    """Histories of put / delete / get / sync operations, at least one operation long."""
    key_strategy = key_strategy if key_strategy is not None else keys()
    value_strategy = value_strategy if value_strategy is not None else values()
    choices = [st.builds(put, key_strategy, value_strategy),
               st.builds(delete, key_strategy),
               st.builds(get, key_strategy)]
    if with_sync:
        choices.append(st.just(sync()))
    return st.lists(st.one_of(*choices), min_size=1, max_size=max_size)
