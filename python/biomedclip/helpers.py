"""Pure Python helpers for what comes after the embeddings: an index reader and the notebook's
zero-shot table."""
import collections
import json
import os

import numpy as np

from . import _lib as L
from ._core import Error, _as_items, _error, _invalid, similarity

NOTEBOOK_TEMPLATE = "this is a photo of "

Hit = collections.namedtuple("Hit", "path score row")
Hit.__doc__ = "One search result: the image path, its cosine similarity and its row in the index."


def _npy_header(f, path):
    """(n, dim, data offset) of an .npy file of '<f4' (N, D) rows, as `biomedclip search` reads."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        elif version == (3, 0) and hasattr(fmt, "_read_array_header"):
            shape, fortran, dtype = fmt._read_array_header(f, version)
        else:
            raise ValueError("unsupported .npy version %d.%d" % version)
    except ValueError as e:
        raise _error(L.BMC_E_FORMAT, "%s: %s" % (path, e)) from None
    if dtype != np.dtype("<f4"):
        raise _error(L.BMC_E_FORMAT, "%s: embeddings are not little-endian float32 ('<f4')" % path)
    if fortran:
        raise _error(L.BMC_E_FORMAT, "%s: embeddings are in Fortran order" % path)
    if len(shape) != 2 or shape[1] <= 0:
        raise _error(L.BMC_E_FORMAT, "%s: embeddings are not a 2-D (N, D) array" % path)
    return shape[0], shape[1], f.tell()


class Index:
    """An index directory written by `biomedclip index` (docs/CLI.md, "Index format"):
    embeddings.npy (N unit-norm float32 rows) and paths.txt (N lines), plus index.json.

    Index(path)        reads the committed rows (the .npy header's N; a tail an interrupted
                       `index` run left behind is ignored, as the command does). The
                       embeddings are memory-mapped, read-only.
    .embeddings        [N, D] float32;  .paths  list of N str;  .dim  D;  .meta  index.json
    len(index), index[i] -> (path, embedding)
    .search(query, k=10)
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        emb_path = os.path.join(self.path, "embeddings.npy")
        try:
            with open(emb_path, "rb") as f:
                n, dim, offset = _npy_header(f, emb_path)
                size = os.fstat(f.fileno()).st_size
        except OSError as e:
            raise _error(L.BMC_E_IO, "%s: %s" % (emb_path, e.strerror or e)) from None
        if offset + n * dim * 4 > size:
            raise _error(L.BMC_E_FORMAT, "%s: %d rows of %d in the header but the file holds "
                         "%d bytes: the index is damaged" % (emb_path, n, dim, size))
        if n:
            self.embeddings = np.memmap(emb_path, dtype="<f4", mode="r", offset=offset,
                                        shape=(n, dim))
        else:
            self.embeddings = np.empty((0, dim), np.float32)
        self.dim = dim
        paths_path = os.path.join(self.path, "paths.txt")
        try:
            with open(paths_path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise _error(L.BMC_E_IO, "%s: %s" % (paths_path, e.strerror or e)) from None
        lines = data.split(b"\n")[:-1]  # only lines ended by '\n' were committed
        if len(lines) < n:
            raise _error(L.BMC_E_FORMAT, "%s: %d paths for %d embeddings: the index is damaged"
                         % (paths_path, len(lines), n))
        self.paths = [os.fsdecode(x) for x in lines[:n]]  # bytes that are not UTF-8 round-trip
        self.meta = {}
        try:
            with open(os.path.join(self.path, "index.json"), encoding="utf-8") as f:
                self.meta = json.load(f)
        except (OSError, ValueError):
            pass  # optional: search does not need it

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.paths[i], self.embeddings[i]

    def __repr__(self):
        return "<biomedclip.Index %r: %d x %d>" % (self.path, len(self), self.dim)

    def search(self, query, k=10):
        """The k rows most similar (cosine) to a query embedding, best first, equal scores in
        index order, as `biomedclip search`: a list of Hit(path, score, row). A 2-D [m, D]
        query gives a list of m such lists."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
            raise _invalid("Index.search: k must be an int >= 0, got %r" % (k,))
        q = np.asarray(query, dtype=np.float32)
        if q.ndim not in (1, 2) or q.shape[-1] != self.dim:
            raise _invalid("Index.search: want a query of %d numbers (or [m, %d]), got shape %s"
                           % (self.dim, self.dim, q.shape))
        rows = q[None] if q.ndim == 1 else q
        results = []
        for r in rows:
            if len(self) == 0 or k == 0:
                results.append([])
                continue
            scores = similarity(r, self.embeddings)  # bmc_similarity, as the command
            order = np.argsort(-scores, kind="stable")[:k]
            results.append([Hit(self.paths[i], float(scores[i]), int(i)) for i in order])
        return results[0] if q.ndim == 1 else results


def zero_shot(model, images, labels, template=NOTEBOOK_TEMPLATE, **decode):
    """The BiomedCLIP notebook's zero-shot probabilities: texts template + label, then
    softmax_j(logit_scale * cosine(image_i, text_j)). Returns [n_images, n_labels] float32
    (the notebook's `logits`), labels in the order given."""
    if isinstance(labels, str):
        raise _invalid("zero_shot: labels must be a list of str, not one str")
    labels = list(labels)
    if not labels:
        raise _invalid("zero_shot: no labels")
    items, _ = _as_items(images, "zero_shot")
    img = model.encode_image(items, **decode)
    txt = model.encode_text([template + x for x in labels])
    return model.zero_shot_probs(img, txt)


def zero_shot_table(names, labels, probs, top_k=None):
    """The notebook's printout of zero-shot probabilities: per image `name:`, then
    `label: probability` lines, most probable first (top_k of them), then two blank lines.
    Probabilities print as Python floats of the float32 values, as the notebook's do."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape != (len(names), len(labels)):
        raise _invalid("zero_shot_table: probs of shape %s for %d names and %d labels"
                       % (probs.shape, len(names), len(labels)))
    k = len(labels) if top_k is None else min(int(top_k), len(labels))
    out = []
    for name, row in zip(names, probs):
        out.append("%s:" % name)
        for j in np.argsort(-row, kind="stable")[:k]:
            out.append("%s: %r" % (labels[j], float(row[j])))
        out.append("\n")
    return "\n".join(out)


__all__ = ["Index", "Hit", "zero_shot", "zero_shot_table", "NOTEBOOK_TEMPLATE", "Error"]
