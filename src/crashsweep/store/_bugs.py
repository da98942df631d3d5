"""Seeded bugs of the built-in store, off by default (`StoreConfig(bug=NAME)`, `--option bug=NAME`).

They exist to measure how good crashsweep's sweeps are; each is a classic
mistake of copy-on-write stores with a journal. Which faults a sweep needs to
find each one is in the README's table and tests/quality/test_betree_bugs.py.
"""

BUGS = {
    "no-flush-before-superblock": "a checkpoint writes nodes, table and superblock with no flush between them",
    "superblock-counter-ignored": "open takes superblock 0 whenever it is valid, newest or not",
    "journal-replay-wrong-start": "replay starts at the oldest journal block on the ring, not where the "
                                  "superblock says",
    "reuse-before-durable": "a block freed by copy-on-write is reused before the checkpoint that freed it "
                            "is durable",
    "journal-no-checksum": "journal sectors are accepted without their checksum (magic and sequence only)",
    "sync-before-journal-durable": "sync() returns after submitting the journal write, without flushing it",
    "journal-space-unchecked": "sync() appends to the journal ring without checking for live sectors, and "
                               "never checkpoints to make room (the ring wraps onto synced records)",
    "checkpoint-forgets-new-nodes": "a checkpoint writes back only nodes written before; nodes born since "
                                    "(splits) stay out of the indirection table",
    "node-written-in-place": "a dirty node is written back over its own durable block (no copy-on-write)",
}
