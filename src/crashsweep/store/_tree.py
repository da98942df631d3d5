"""The B^ε-tree: nodes, lookups, scans, buffered inserts, batched flushes, splits and merges.

Internal nodes hold pivots, child node ids (logical: the indirection table maps
them to blocks) and a buffer of messages (put / delete, the newest per key). A
mutation goes into the root's buffer; a buffer over its budget flushes the
biggest batch (the messages bound for one child) one level down; a leaf over
the node size splits, an internal node over the fanout splits, a split root
grows the tree by one level. Deletes: an emptied leaf is removed from its
parent, two small neighbouring leaves merge, and a root with one child and an
empty buffer hands over to that child, so deleting shrinks the tree again;
`compact` pushes every buffer down so that this happens everywhere (an internal
node left with one child then hands over to it, so leaves may sit at different
depths, which lookups and scans do not mind).

Nodes are reached only through `pages` (see _pages.NodePages): `get`, `modified`,
`create`, `drop`. The tree never touches the device.

Invariants (checked by `check_invariants`, used by tests): pivots ascend and
separate the children's key ranges; a message in a node's buffer is newer than
anything below it for that key; between operations every node fits its block
and every internal node has at most `fanout` children.
"""

from __future__ import annotations

import bisect

from crashsweep.store._node_format import (
    BLOCK_HEADER, CHILD, INTERNAL_HEAD, LEAF_ENTRY, LEAF_HEAD, LEAF_OFFSET, MESSAGE, MESSAGE_DELETE, MESSAGE_PUT, PIVOT,
    decode_leaf, leaf_lookup,
)

KEY_BYTES_LIMIT = 1024


class _Decoded:
    """A leaf's key or value list, decoding an encoded leaf on first use (read or write)."""

    def __init__(self, slot: str):
        self.slot = slot

    def __get__(self, leaf, owner=None):
        if leaf is None:
            return self
        if leaf.raw is not None:
            leaf._decode()
        return getattr(leaf, self.slot)

    def __set__(self, leaf, items: list[bytes]) -> None:
        if leaf.raw is not None:
            leaf._decode()
        setattr(leaf, self.slot, items)


class Leaf:
    """A leaf: sorted keys and their values. A leaf read from disk stays encoded (`raw`) until
    something needs its lists, so a point read of an uncached leaf decodes O(log n) entries."""

    __slots__ = ("_keys", "_values", "raw", "size")

    def __init__(self, keys: list[bytes] | None = None, values: list[bytes] | None = None):
        self._keys = keys if keys is not None else []
        self._values = values if values is not None else []
        self.raw: bytes | None = None
        self.size = LEAF_HEAD.size + sum(entry_size(k, v) for k, v in zip(self._keys, self._values))

    @classmethod
    def encoded(cls, payload: bytes) -> "Leaf":
        """Requires: check_leaf(payload) passed."""
        leaf = cls.__new__(cls)
        leaf._keys = leaf._values = None
        leaf.raw, leaf.size = payload, len(payload)
        return leaf

    def _decode(self) -> None:
        self._keys, self._values = decode_leaf(self.raw)
        self.raw = None

    keys = _Decoded("_keys")
    values = _Decoded("_values")

    def lookup(self, key: bytes) -> bytes | None:
        if self.raw is not None:
            return leaf_lookup(self.raw, key)
        index = bisect.bisect_left(self._keys, key)
        if index < len(self._keys) and self._keys[index] == key:
            return self._values[index]
        return None

    is_leaf = True


class Internal:
    __slots__ = ("children", "pivots", "buffer", "buffer_size", "fixed_size")

    def __init__(self, children: list[int], pivots: list[bytes], buffer: dict | None = None):
        assert len(pivots) == len(children) - 1
        self.children, self.pivots = children, pivots
        self.buffer: dict[bytes, tuple[int, bytes]] = buffer if buffer is not None else {}
        self.buffer_size = sum(message_size(k, v) for k, (_, v) in self.buffer.items())
        self.fixed_size = 0
        self.refresh()

    is_leaf = False

    def refresh(self) -> None:
        self.fixed_size = (INTERNAL_HEAD.size + CHILD.size * len(self.children)
                           + sum(PIVOT.size + len(p) for p in self.pivots))

    @property
    def size(self) -> int:
        return self.fixed_size + self.buffer_size


def message_size(key: bytes, value: bytes) -> int:
    return MESSAGE.size + len(key) + len(value)


def entry_size(key: bytes, value: bytes) -> int:
    return LEAF_OFFSET.size + LEAF_ENTRY.size + len(key) + len(value)


class Tree:
    """Example: `tree = Tree(pages, root_id, 4096, 4); tree.put(b"k", b"v"); tree.get(b"k")`."""

    def __init__(self, pages, root_id: int, node_size_bytes: int, fanout: int):
        self.pages, self.root_id, self.fanout = pages, root_id, fanout
        self.capacity = node_size_bytes - BLOCK_HEADER.size
        self.key_bytes_max = min(KEY_BYTES_LIMIT, (self.capacity // 2) // (fanout + 1) - PIVOT.size)
        fixed_max = INTERNAL_HEAD.size + CHILD.size * (fanout + 1) + (PIVOT.size + self.key_bytes_max) * fanout
        self.buffer_bytes_max = self.capacity - fixed_max
        # A leaf splits into pieces of at most half a node, so an entry may be up to half a node; a
        # message must also fit an internal node's buffer on its own.
        self.entry_bytes_max = min(self.capacity // 2 - LEAF_HEAD.size - LEAF_OFFSET.size - LEAF_ENTRY.size,
                                   self.buffer_bytes_max) - MESSAGE.size
        assert self.key_bytes_max >= 16 and self.entry_bytes_max >= self.capacity // 8, (
            self.key_bytes_max, self.entry_bytes_max)

    # -- reads --
    def get(self, key: bytes) -> bytes | None:
        node = self.pages.get(self.root_id)
        while not node.is_leaf:
            message = node.buffer.get(key)
            if message is not None:
                return message[1] if message[0] == MESSAGE_PUT else None
            node = self.pages.get(node.children[bisect.bisect_right(node.pivots, key)])
        return node.lookup(key)

    def scan(self, start: bytes | None, end: bytes | None) -> list[tuple[bytes, bytes]]:
        """Sorted (key, value) pairs with start <= key < end (None: unbounded)."""
        return sorted(self._scan(self.root_id, start, end).items())

    def _scan(self, node_id: int, start, end) -> dict[bytes, bytes]:
        node = self.pages.get(node_id)
        if node.is_leaf:
            low = 0 if start is None else bisect.bisect_left(node.keys, start)
            high = len(node.keys) if end is None else bisect.bisect_left(node.keys, end)
            return dict(zip(node.keys[low:high], node.values[low:high]))
        result: dict[bytes, bytes] = {}
        for index, child in enumerate(node.children):
            low = node.pivots[index - 1] if index > 0 else None
            high = node.pivots[index] if index < len(node.pivots) else None
            if (end is not None and low is not None and low >= end) or \
               (start is not None and high is not None and high <= start):
                continue
            result.update(self._scan(child, start, end))
            self.pages.relieve()
        for key, (kind, value) in node.buffer.items():
            if (start is None or key >= start) and (end is None or key < end):
                if kind == MESSAGE_PUT:
                    result[key] = value
                else:
                    result.pop(key, None)
        return result

    # -- writes --
    def put(self, key: bytes, value: bytes) -> None:
        self._insert(key, MESSAGE_PUT, value, restore=True)

    def delete(self, key: bytes) -> None:
        self._insert(key, MESSAGE_DELETE, b"", restore=True)

    def replay(self, kind: int, key: bytes, value: bytes) -> None:
        """Apply a journal record in memory only: no flush, no split (recovery writes nothing)."""
        self._insert(key, kind, value, restore=False)

    def _insert(self, key: bytes, kind: int, value: bytes, restore: bool) -> None:
        root = self.pages.get(self.root_id)
        self.pages.modified(self.root_id)
        if root.is_leaf:
            _apply_to_leaf(root, [(key, (kind, value))])
        else:
            old = root.buffer.get(key)
            if old is not None:
                root.buffer_size -= message_size(key, old[1])
            root.buffer[key] = (kind, value)
            root.buffer_size += message_size(key, value)
        if restore:
            self.restore_bounds()

    def restore_bounds(self) -> None:
        """Flush, split and shrink until every node fits (run before anything is written back)."""
        root = self.pages.get(self.root_id)
        if root.is_leaf:
            if root.size > self.capacity:
                self._grow_root(self._split_leaf(self.root_id, root))
            return
        while root.buffer_size > self.buffer_bytes_max:
            self._flush_one(self.root_id, root)
        if len(root.children) > self.fanout:
            self._grow_root(self._split_internal(self.root_id, root))
        self._shrink_root()

    def compact(self) -> None:
        """Flush every buffer down to the leaves: deletes reach them, emptied leaves go, small ones merge."""
        self._flush_all(self.root_id)
        self.restore_bounds()

    def _flush_all(self, node_id: int) -> None:
        node = self.pages.get(node_id)
        if node.is_leaf:
            return
        while node.buffer:
            self._flush_one(node_id, node)
        for child in list(node.children):
            if child in node.children:
                self._flush_all(child)
        for index in range(len(node.children) - 1, -1, -1):
            if index >= len(node.children):
                continue
            child_id = node.children[index]
            child = self.pages.get(child_id)
            if not child.is_leaf and len(child.children) == 1 and not child.buffer:
                node.children[index] = child.children[0]      # an internal node with one child hands over
                self.pages.drop(child_id)
                child = self.pages.get(node.children[index])
            if child.is_leaf:
                self._merge_small_leaf(node_id, node, index)
        self.pages.modified(node_id)

    def _grow_root(self, pieces: list[tuple[bytes | None, int]]) -> None:
        """The root split into `pieces` (pivot before it, node id): put a new root above them."""
        assert len(pieces) >= 2
        new_root = Internal([node_id for _, node_id in pieces], [pivot for pivot, _ in pieces[1:]])
        self.root_id = self.pages.create(new_root)
        if len(new_root.children) > self.fanout:
            self._grow_root(self._split_internal(self.root_id, new_root))

    def _shrink_root(self) -> None:
        root = self.pages.get(self.root_id)
        while not root.is_leaf and len(root.children) == 1 and not root.buffer:
            old = self.root_id
            self.root_id = root.children[0]
            self.pages.drop(old)
            root = self.pages.get(self.root_id)

    def _flush_one(self, node_id: int, node: Internal) -> None:
        """Move the biggest batch of `node`'s buffer (the messages for one child) into that child."""
        batches: dict[int, list] = {}
        sizes: dict[int, int] = {}
        for key, message in node.buffer.items():
            index = bisect.bisect_right(node.pivots, key)
            batches.setdefault(index, []).append((key, message))
            sizes[index] = sizes.get(index, 0) + message_size(key, message[1])
        index = max(sizes, key=lambda i: (sizes[i], -i))
        batch = batches[index]
        for key, message in batch:
            del node.buffer[key]
        node.buffer_size -= sizes[index]
        self.pages.modified(node_id)
        child_id = node.children[index]
        child = self.pages.get(child_id)
        self.pages.modified(child_id)
        if child.is_leaf:
            _apply_to_leaf(child, batch)
            pieces = self._split_leaf(child_id, child) if child.size > self.capacity else None
        else:
            for key, message in batch:
                old = child.buffer.get(key)
                if old is not None:
                    child.buffer_size -= message_size(key, old[1])
                child.buffer[key] = message
                child.buffer_size += message_size(key, message[1])
            while child.buffer_size > self.buffer_bytes_max:
                self._flush_one(child_id, child)
            pieces = self._split_internal(child_id, child) if len(child.children) > self.fanout else None
        if pieces is not None:
            self._replace_child(node, index, pieces)
        elif child.is_leaf:
            self._merge_small_leaf(node_id, node, index)

    def _replace_child(self, node: Internal, index: int, pieces: list[tuple[bytes | None, int]]) -> None:
        node.children[index:index + 1] = [node_id for _, node_id in pieces]
        node.pivots[index:index] = [pivot for pivot, _ in pieces[1:]]
        node.refresh()

    def _split_leaf(self, node_id: int, leaf: Leaf) -> list[tuple[bytes | None, int]]:
        """Split an oversized leaf into pieces of about half a node; the first piece keeps `node_id`."""
        target = self.capacity // 2
        groups, current, size = [], [], LEAF_HEAD.size
        for key, value in zip(leaf.keys, leaf.values):
            grown = entry_size(key, value)
            if current and size + grown > target:
                groups.append(current)
                current, size = [], LEAF_HEAD.size
            current.append((key, value))
            size += grown
        groups.append(current)
        first = groups[0]
        leaf.keys, leaf.values = [k for k, _ in first], [v for _, v in first]
        leaf.size = LEAF_HEAD.size + sum(entry_size(k, v) for k, v in first)
        pieces: list[tuple[bytes | None, int]] = [(None, node_id)]
        for group in groups[1:]:
            pieces.append((group[0][0], self.pages.create(Leaf([k for k, _ in group], [v for _, v in group]))))
        return pieces

    def _split_internal(self, node_id: int, node: Internal) -> list[tuple[bytes | None, int]]:
        """Split a node with too many children into parts of at most `fanout` children each."""
        count = len(node.children)
        parts = -(-count // self.fanout)
        bounds = [round(count * part / parts) for part in range(parts + 1)]
        children, pivots, buffer = node.children, node.pivots, node.buffer
        pieces: list[tuple[bytes | None, int]] = []
        for part in range(parts):
            low, high = bounds[part], bounds[part + 1]
            separator = pivots[low - 1] if low > 0 else None
            upper = pivots[high - 1] if high < count else None
            own = {k: m for k, m in buffer.items()
                   if (separator is None or k >= separator) and (upper is None or k < upper)}
            if part == 0:
                node.children, node.pivots, node.buffer = children[low:high], pivots[low:high - 1], own
                node.buffer_size = sum(message_size(k, m[1]) for k, m in own.items())
                node.refresh()
                pieces.append((None, node_id))
            else:
                pieces.append((separator, self.pages.create(Internal(children[low:high], pivots[low:high - 1], own))))
        return pieces

    def _merge_small_leaf(self, node_id: int, node: Internal, index: int) -> None:
        """Remove an empty leaf; merge a small leaf into its right or left neighbour when both fit in half a node."""
        child_id = node.children[index]
        child = self.pages.get(child_id)
        if len(node.children) < 2 or child.size > self.capacity // 4:
            return
        if not child.keys:
            self._remove_child(node, index)
            self.pages.drop(child_id)
            return
        for neighbour_index in (index + 1, index - 1):
            if not 0 <= neighbour_index < len(node.children):
                continue
            neighbour = self.pages.get(node.children[neighbour_index])
            if neighbour.is_leaf and neighbour.size + child.size <= self.capacity // 2:
                left, right = sorted((index, neighbour_index))
                left_id, right_id = node.children[left], node.children[right]
                left_leaf, right_leaf = self.pages.get(left_id), self.pages.get(right_id)
                left_leaf.keys += right_leaf.keys
                left_leaf.values += right_leaf.values
                left_leaf.size += right_leaf.size - LEAF_HEAD.size
                self.pages.modified(left_id)
                self._remove_child(node, right)
                self.pages.drop(right_id)
                return

    @staticmethod
    def _remove_child(node: Internal, index: int) -> None:
        """Drop child `index`; its key range joins its left neighbour's (or the right one's, for the first)."""
        del node.children[index]
        del node.pivots[index - 1 if index > 0 else 0]
        node.refresh()

    # -- checks for tests --
    def check_invariants(self) -> int:
        """Walk the whole tree; assert the invariants of the module docstring; return the node count."""
        return self._check(self.root_id, None, None)

    def _check(self, node_id: int, low, high) -> int:
        node = self.pages.get(node_id)
        assert node.size <= self.capacity, (node_id, node.size, self.capacity)
        keys = node.keys if node.is_leaf else node.pivots
        assert all(a < b for a, b in zip(keys, keys[1:]))
        assert all((low is None or k >= low) and (high is None or k < high) for k in keys)
        if node.is_leaf:
            return 1
        assert 1 <= len(node.children) <= self.fanout
        assert all((low is None or k >= low) and (high is None or k < high) for k in node.buffer)
        bounds = [low] + list(node.pivots) + [high]
        return 1 + sum(self._check(child, bounds[i], bounds[i + 1]) for i, child in enumerate(node.children))


def _apply_to_leaf(leaf: Leaf, batch: list[tuple[bytes, tuple[int, bytes]]]) -> None:
    if len(batch) <= 8:
        for key, (kind, value) in batch:
            index = bisect.bisect_left(leaf.keys, key)
            present = index < len(leaf.keys) and leaf.keys[index] == key
            if present:
                leaf.size -= entry_size(key, leaf.values[index])
                if kind == MESSAGE_PUT:
                    leaf.values[index] = value
                    leaf.size += entry_size(key, value)
                else:
                    del leaf.keys[index]
                    del leaf.values[index]
            elif kind == MESSAGE_PUT:
                leaf.keys.insert(index, key)
                leaf.values.insert(index, value)
                leaf.size += entry_size(key, value)
        return
    merged = dict(zip(leaf.keys, leaf.values))
    for key, (kind, value) in batch:
        if kind == MESSAGE_PUT:
            merged[key] = value
        else:
            merged.pop(key, None)
    leaf.keys = sorted(merged)
    leaf.values = [merged[key] for key in leaf.keys]
    leaf.size = LEAF_HEAD.size + sum(entry_size(k, v) for k, v in merged.items())
