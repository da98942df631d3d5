"""The file-system model medium's disk side: the micro-op log, the tree image, the persistence models, the
session a path engine's calls run in, the interposition and the call memo."""
