"""Model, errors and similarity: a thin layer over the C API (include/biomedclip.h)."""
import ctypes
import io
import os
import sys
import threading

import numpy as np

from . import _lib as L

_lib, library_path = L.load()

_INT_MAX = 2 ** 31 - 1


# ---- errors ------------------------------------------------------------------------------------

class Error(Exception):
    """A failure reported by libbiomedclip (or found by this package before calling it).

    .status   the bmc_status code (an int: -1 BMC_E_INVALID_ARG ... -99 BMC_E_INTERNAL)
    .message  the library's message (bmc_last_error()), naming the file, item or dimension
    """

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def status_name(self):
        """The library's English name of the status, e.g. 'BMC_E_IMAGE: ...'."""
        return _lib.bmc_status_str(self.status).decode("utf-8", "replace")

    def __str__(self):
        return self.message

    def __reduce__(self):  # picklable (multiprocessing sends exceptions back)
        return (type(self), (self.status, self.message))


class InvalidArgumentError(Error, ValueError):
    """BMC_E_INVALID_ARG: a bad argument (wrong type, dtype, shape, count, ...)."""


class FileError(Error):
    """BMC_E_IO: a file could not be opened, read or mapped."""


class FormatError(Error):
    """BMC_E_FORMAT: a malformed model file (or index file)."""


class VersionError(Error):
    """BMC_E_VERSION: a model file of an unsupported format version."""


class ChecksumError(Error):
    """BMC_E_CHECKSUM: a model file's checksum is wrong."""


class OutOfMemoryError(Error, MemoryError):
    """BMC_E_NOMEM: an allocation failed."""


class ImageError(Error):
    """BMC_E_IMAGE: an image could not be decoded, or is of an unusable size."""


class TooLongError(Error):
    """BMC_E_TOO_LONG: an output buffer is too small."""


class InternalError(Error):
    """BMC_E_INTERNAL: a bug in the library."""


_ERRORS = {L.BMC_E_INVALID_ARG: InvalidArgumentError, L.BMC_E_IO: FileError,
           L.BMC_E_FORMAT: FormatError, L.BMC_E_VERSION: VersionError,
           L.BMC_E_CHECKSUM: ChecksumError, L.BMC_E_NOMEM: OutOfMemoryError,
           L.BMC_E_IMAGE: ImageError, L.BMC_E_TOO_LONG: TooLongError,
           L.BMC_E_INTERNAL: InternalError}


def _error(status, message):
    return _ERRORS.get(status, Error)(status, message)


def _check(status, context=None):
    """Raise the Error of a failed call; the message is read on the calling thread, where the
    library keeps it."""
    if status != L.BMC_OK:
        msg = _lib.bmc_last_error().decode("utf-8", "replace")
        if not msg:
            msg = _lib.bmc_status_str(status).decode("utf-8", "replace")
        raise _error(status, "%s: %s" % (context, msg) if context else msg)


def _invalid(message):
    return InvalidArgumentError(L.BMC_E_INVALID_ARG, message)


# ---- library ------------------------------------------------------------------------------------

def library_version():
    """The loaded library's version string, e.g. '0.1.0'."""
    return _lib.bmc_version_string().decode()


def system_info():
    """The library's build and machine description (SIMD level, BLAS, decoders)."""
    return _lib.bmc_system_info().decode("utf-8", "replace")


def _f32_rows(x, what):
    """x as a C-contiguous float32 2-D array, and whether it was 1-D."""
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise _invalid("%s: not convertible to float32 numbers (%s)" % (what, e)) from None
    if a.ndim == 1:
        return np.ascontiguousarray(a[None, :]), True
    if a.ndim != 2:
        raise _invalid("%s: want a 1-D embedding or a 2-D [n, dim] array, got shape %s"
                       % (what, a.shape))
    return np.ascontiguousarray(a), False


def similarity(a, b):
    """Cosine similarities of the rows of a [n, dim] with the rows of b [m, dim]: [n, m] float32
    (bmc_similarity: dot products in double, norms floored at 1e-12). A 1-D argument is one row,
    and its axis is dropped from the result (two 1-D arguments give a Python float)."""
    a2, a1 = _f32_rows(a, "similarity: a")
    b2, b1 = _f32_rows(b, "similarity: b")
    if a2.shape[1] != b2.shape[1]:
        raise _invalid("similarity: a has %d numbers a row, b has %d" % (a2.shape[1], b2.shape[1]))
    for arr, what in ((a2, "a"), (b2, "b")):
        if arr.shape[0] > _INT_MAX or arr.shape[1] > _INT_MAX:
            raise _invalid("similarity: %s of shape %s is too large" % (what, arr.shape))
    out = np.empty((a2.shape[0], b2.shape[0]), np.float32)
    _check(_lib.bmc_similarity(a2.ctypes.data, a2.shape[0], b2.ctypes.data, b2.shape[0],
                               a2.shape[1], out.ctypes.data))
    if a1 and b1:
        return float(out[0, 0])
    if a1:
        return out[0]
    if b1:
        return out[:, 0]
    return out


# ---- images -------------------------------------------------------------------------------------

# PIL modes a PNG stores losslessly, so that the library applies its own per-mode rules (palette
# resized nearest on indices, gray + alpha, 16-bit samples) exactly as for a file.
_PNG_MODES = ("1", "LA", "P", "I", "I;16", "I;16B")
_FORMATS = {1: L.BMC_PIXEL_GRAY, 3: L.BMC_PIXEL_RGB, 4: L.BMC_PIXEL_RGBA}


def _is_pil(obj):
    mod = sys.modules.get("PIL.Image")  # PIL is never imported here: only recognised if in use
    return mod is not None and isinstance(obj, mod.Image)


def _is_image_item(x):
    return (isinstance(x, (str, bytes, bytearray, memoryview, os.PathLike, np.ndarray))
            or _is_pil(x))


def _as_items(images, what):
    """(list of items, single): a single image, or a list/tuple/4-D array of images."""
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images), False
        return [images], True
    if _is_image_item(images):
        return [images], True
    if isinstance(images, (list, tuple)):
        return list(images), False
    raise _invalid("%s: want an image (path, bytes, numpy uint8 array, PIL image) or a list of "
                   "them, got %s" % (what, type(images).__name__))


def _uint8_array(a, where):
    """a as uint8 pixels [H, W] / [H, W, C]: any integer dtype with values in 0..255 is taken."""
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind in "iu":
        if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
            raise _invalid("%s: %s values %d..%d are outside 0..255 (8-bit pixels)"
                           % (where, a.dtype, int(a.min()), int(a.max())))
        return a.astype(np.uint8)
    raise _invalid("%s: numpy array of dtype %s: want uint8 pixels (0..255), or an integer "
                   "dtype within 0..255; scale floats yourself, e.g. "
                   "(x * 255).round().astype(np.uint8)" % (where, a.dtype))


def _view_of_array(img, a, where, keep):
    """Fill the bmc_image img with a view of the array a (copied to contiguous rows only when
    its pixels are not packed within a row, or rows run backwards)."""
    a = _uint8_array(a, where)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        channels = 1
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        channels = a.shape[2]
    else:
        raise _invalid("%s: numpy array of shape %s: want H x W (gray), H x W x 3 (RGB) or "
                       "H x W x 4 (RGBA)" % (where, a.shape))
    h, w = a.shape[0], a.shape[1]
    row = w * channels
    if h > _INT_MAX or row > _INT_MAX:
        raise _invalid("%s: array of shape %s is too large" % (where, a.shape))

    # A size-1 axis may carry any stride: only the steps actually taken matter.
    def packed(arr):
        pix_ok = w <= 1 or arr.strides[1] == channels
        chan_ok = channels == 1 or arr.strides[2] == 1
        row_ok = h <= 1 or row <= arr.strides[0] <= _INT_MAX
        return pix_ok and chan_ok and row_ok

    if a.size and not packed(a):
        a = np.ascontiguousarray(a)
    stride = a.strides[0] if h > 1 else row
    keep.append(a)
    img.width, img.height, img.format = w, h, _FORMATS[channels]
    img.stride = stride
    img.pixels = a.ctypes.data if a.size else ctypes.addressof(_EMPTY)
    img.internal_ = None


_EMPTY = (ctypes.c_ubyte * 1)()


def _load_params(opts):
    """bmc_load_params from encode_image's keyword options (frame, window)."""
    p = _lib.bmc_load_default_params()
    p.flags = opts["flags"]
    frame, window = opts["frame"], opts["window"]
    if frame is not None:
        if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame <= _INT_MAX:
            raise _invalid("frame must be an int >= 0, got %r" % (frame,))
        p.frame = frame
    if window is None or window == "auto":
        p.window = 0
    elif window == "minmax":
        p.window = 2
    elif isinstance(window, str) and (window == "file" or window.startswith("file:")):
        p.window = 1
        try:
            p.window_index = int(window[5:]) if window != "file" else 0
            if not 0 <= p.window_index <= _INT_MAX:
                raise ValueError
        except ValueError:
            raise _invalid("window %r: want 'file' or 'file:K'" % window) from None
    elif isinstance(window, (tuple, list)) and len(window) == 2:
        p.window = 3
        try:
            p.window_center, p.window_width = float(window[0]), float(window[1])
        except (TypeError, ValueError):
            raise _invalid("window %r: want (center, width) numbers" % (window,)) from None
    else:
        raise _invalid("window %r: want None, 'auto', 'minmax', 'file', 'file:K' or "
                       "(center, width)" % (window,))
    return p


def _decode_opts(pil_16bit, frame, window):
    """The decoding options of files and bytes, checked now (arrays do not use them)."""
    opts = {"flags": L.BMC_DECODE_PIL_16BIT if pil_16bit else L.BMC_DECODE_DEFAULT,
            "frame": frame, "window": window}
    if frame is not None or window is not None:
        if not L.has(_lib, "bmc_image_load_ex"):
            raise _invalid("frame / window options need a libbiomedclip with bmc_image_load_ex "
                           "(%s has none)" % library_path)
        _load_params(opts)
    return opts


def _load_bytes(img, data, where, opts, keep):
    buf = np.frombuffer(data, dtype=np.uint8) if len(data) else None
    addr = buf.ctypes.data if buf is not None else ctypes.addressof(_EMPTY)
    keep.append(buf)
    size = buf.size if buf is not None else 0
    if opts["frame"] is not None or opts["window"] is not None:
        p = _load_params(opts)
        st = _lib.bmc_image_load_memory_ex(addr, size, ctypes.byref(p), ctypes.byref(img))
    else:
        st = _lib.bmc_image_load_memory(addr, size, opts["flags"], ctypes.byref(img))
    _check(st, where)


def _fill_image(img, item, where, opts, keep):
    """Make img (a bmc_image) from one item. Returns True when the library owns its pixels
    (bmc_image_free is then due)."""
    if isinstance(item, (str, os.PathLike)):
        path = os.fsencode(item)
        if b"\0" in path:
            raise _invalid("%s: path contains a NUL character" % where)
        if opts["frame"] is not None or opts["window"] is not None:
            p = _load_params(opts)
            _check(_lib.bmc_image_load_ex(path, ctypes.byref(p), ctypes.byref(img)))
        else:
            _check(_lib.bmc_image_load(path, opts["flags"], ctypes.byref(img)))
        return True
    if isinstance(item, (bytes, bytearray, memoryview)):
        if isinstance(item, memoryview) and not item.c_contiguous:
            item = item.tobytes()
        _load_bytes(img, item, where, opts, keep)
        return True
    if isinstance(item, np.ndarray):
        _view_of_array(img, item, where, keep)
        return False
    if _is_pil(item):
        mode = item.mode
        if mode in ("L", "RGB", "RGBA"):
            _view_of_array(img, np.asarray(item), where, keep)
            return False
        if mode.startswith("I;16") and mode not in _PNG_MODES:
            item, mode = item.convert("I"), "I"
        if mode in _PNG_MODES:
            f = io.BytesIO()
            item.save(f, format="PNG", compress_level=1)
            _load_bytes(img, f.getbuffer(), where, opts, keep)
            return True
        conv = "RGBA" if mode in ("PA", "La", "RGBa") else "RGB"
        _view_of_array(img, np.asarray(item.convert(conv)), where, keep)
        return False
    raise _invalid("%s: want a path, bytes, a numpy uint8 array or a PIL image, got %s"
                   % (where, type(item).__name__))


def image_info(image, pil_16bit=False, frame=None, window=None):
    """What the decoder saw in a file (path or bytes), as a dict (bmc_image_get_info): format,
    mode (PIL's), width, height, bits_stored, n_frames (DICOM frames / TIFF pages), frame,
    photometric, transfer_syntax, window (the rule that made it 8-bit). Needs a library with
    bmc_image_get_info."""
    if not L.has(_lib, "bmc_image_get_info"):
        raise _invalid("image_info needs a libbiomedclip with bmc_image_get_info (%s has none)"
                       % library_path)
    if not isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise _invalid("image_info: want a file path or the bytes of a file, got %s"
                       % type(image).__name__)
    opts = _decode_opts(pil_16bit, frame, window)
    info = L.ImageInfo()
    with _Images([image], opts, "image_info") as im:
        _check(_lib.bmc_image_get_info(im.arr, ctypes.byref(info)))
    out = {}
    for name, _ in L.ImageInfo._fields_:
        v = getattr(info, name)
        out[name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return out


class _Images:
    """bmc_image structs for a list of items, freed on exit (views hold their arrays)."""

    def __init__(self, items, opts, what, first=0):
        self.n = len(items)
        self.arr = (L.Image * max(self.n, 1))()
        self.owned, self.keep = [], []
        try:
            for j, it in enumerate(items):
                where = "%s: item %d" % (what, first + j)
                if _fill_image(self.arr[j], it, where, opts, self.keep):
                    self.owned.append(j)
        except BaseException:
            self.close()
            raise

    def close(self):
        for j in self.owned:
            _lib.bmc_image_free(ctypes.byref(self.arr[j]))
        self.owned, self.keep = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- model --------------------------------------------------------------------------------------

class _ModelHandle:
    """Owns the bmc_model; freed when the Model and every context of it are gone."""

    def __init__(self, ptr):
        self.ptr = ptr
        self._free = _lib.bmc_model_free

    def __del__(self):
        if self.ptr:
            self._free(self.ptr)
            self.ptr = None


class _Context:
    """One bmc_ctx, used by one thread; holds the model handle so that the model outlives it."""

    def __init__(self, handle, params):
        out = ctypes.c_void_p()
        _check(_lib.bmc_ctx_new(handle.ptr, ctypes.byref(params), ctypes.byref(out)))
        self.ptr, self.handle, self.pid = out.value, handle, os.getpid()
        self._free, self._getpid = _lib.bmc_ctx_free, os.getpid  # usable at interpreter exit

    def __del__(self):
        # A context inherited through fork() is not freed: its worker threads do not exist in
        # the child, and the parent still owns it.
        if self.ptr and self.pid == self._getpid():
            self._free(self.ptr)
        self.ptr = None


def _texts(texts, what):
    """(list of UTF-8 bytes, single)."""
    single = isinstance(texts, (str, bytes))
    items = [texts] if single else texts
    if isinstance(items, (dict, set, frozenset)):  # no order to give the rows
        raise _invalid("%s: want a str or a list of str, got %s" % (what, type(texts).__name__))
    if not isinstance(items, (list, tuple)):
        try:
            items = list(items)
        except TypeError:
            raise _invalid("%s: want a str or a list of str, got %s"
                           % (what, type(texts).__name__)) from None
    out = []
    for i, t in enumerate(items):
        if isinstance(t, str):
            b = t.encode("utf-8", "surrogatepass")  # invalid UTF-8 becomes U+FFFD in the library
        elif isinstance(t, bytes):
            b = t
        else:
            raise _invalid("%s: item %d is %s, not a str" % (what, i, type(t).__name__))
        if b"\0" in b:
            raise _invalid("%s: item %d contains a NUL character" % (what, i))
        out.append(b)
    return out, single


class Model:
    """A BiomedCLIP model loaded from a .bmc file (mapped read-only, shared by every thread).

    Model(path, threads=0, batch=8, verify=False, prefault=False, huge_pages=True)

    threads   threads each context computes with (bmc_ctx_params.n_threads; 0 = OpenBLAS's
              count, by default every core). With many Python threads, use threads=1.
    batch     items encoded together per library call (bmc_ctx_params.max_batch)
    verify    check every tensor's CRC-32 at load (reads the whole file)

    A Model may be shared by any number of Python threads: each thread gets its own bmc_ctx
    (created on its first encode call, kept in a threading.local, freed when the thread ends
    or the Model is closed), and every library call releases the GIL.
    """

    def __init__(self, path, threads=0, batch=8, verify=False, prefault=False, huge_pages=True):
        if not isinstance(threads, int) or threads < 0:
            raise _invalid("Model: threads must be an int >= 0, got %r" % (threads,))
        if not isinstance(batch, int) or batch < 1:
            raise _invalid("Model: batch must be an int >= 1, got %r" % (batch,))
        p = _lib.bmc_model_default_params()
        p.verify_data, p.prefault, p.huge_pages = int(bool(verify)), int(bool(prefault)), \
            int(bool(huge_pages))
        bpath = os.fsencode(path)
        if b"\0" in bpath:
            raise _invalid("Model: path contains a NUL character")
        out = ctypes.c_void_p()
        _check(_lib.bmc_model_load(bpath, ctypes.byref(p), ctypes.byref(out)))
        self._handle = _ModelHandle(out.value)
        self.path = os.fsdecode(path)
        self.threads, self.batch = threads, batch
        self._local = threading.local()
        m = out.value
        self.embed_dim = _lib.bmc_model_embed_dim(m)
        self.image_size = _lib.bmc_model_image_size(m)
        self.context_length = _lib.bmc_model_context_length(m)
        self.logit_scale = float(_lib.bmc_model_logit_scale(m))

    # -- lifetime --
    def _live(self):
        """The model handle; callers hold it in a local for the length of a library call, so
        that a close() in another thread cannot unmap the model under that call."""
        h = self._handle
        if h is None:
            raise _invalid("Model %s is closed" % self.path)
        return h

    def _ctx(self):
        """This thread's context (made on first use)."""
        h = self._handle
        if h is None:
            raise _invalid("Model %s is closed" % self.path)
        c = getattr(self._local, "ctx", None)
        if c is None or c.pid != os.getpid():
            p = _lib.bmc_ctx_default_params()
            p.n_threads, p.max_batch = self.threads, self.batch
            c = self._local.ctx = _Context(h, p)
        return c.ptr

    def close(self):
        """Free this thread's context and release the model; the mapping goes once the contexts
        of other threads are gone too (as those threads end). Further calls raise Error."""
        self._local.__dict__.pop("ctx", None)
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<biomedclip.Model %r%s>" % (self.path, " (closed)" if self._handle is None else "")

    # -- information --
    @property
    def info(self):
        """The configuration as a dict (embed_dim, image_size, context_length, vocab_size,
        logit_scale, n_params, n_tensors, file_size, path, library, description: the text of
        `biomedclip info`, and its lines as 'fields')."""
        h = self._live()
        m = h.ptr
        n = _lib.bmc_model_describe(m, None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        _lib.bmc_model_describe(m, buf, n + 1)
        text = buf.value.decode("utf-8", "replace")
        fields = {}
        for line in text.splitlines():
            key, _, value = line.partition("  ")
            if key.strip():
                fields[key.strip()] = value.strip()
        return {
            "path": self.path,
            "embed_dim": self.embed_dim,
            "image_size": self.image_size,
            "context_length": self.context_length,
            "vocab_size": _lib.bmc_model_vocab_size(m),
            "logit_scale": self.logit_scale,
            "n_params": int(_lib.bmc_model_n_params(m)),
            "n_tensors": _lib.bmc_model_n_tensors(m),
            "file_size": int(_lib.bmc_model_file_size(m)),
            "threads": self.threads,
            "batch": self.batch,
            "library": library_version(),
            "description": text,
            "fields": fields,
        }

    def token(self, id):
        """The vocabulary string of a token id (None when out of range)."""
        n = ctypes.c_size_t()
        h = self._live()
        p = _lib.bmc_model_token(h.ptr, int(id), ctypes.byref(n))
        return None if not p else ctypes.string_at(p, n.value).decode("utf-8", "replace")

    # -- text --
    def tokenize(self, text):
        """Token ids of a text as the text tower gets them ([CLS] ... [SEP], truncated to the
        context length): a list of int. A list of texts gives a list of lists."""
        items, single = _texts(text, "tokenize")
        h = self._live()
        m = h.ptr
        cap = max(self.context_length, L.BMC_MAX_TOKENS)
        ids = np.empty(cap, np.int32)
        n = ctypes.c_int()
        res = []
        for i, b in enumerate(items):
            _check(_lib.bmc_tokenize(m, b, ids.ctypes.data, cap, ctypes.byref(n)))
            res.append(ids[:n.value].tolist())
        return res[0] if single else res

    def encode_text(self, texts, normalize=True):
        """Text embeddings: a list of n texts gives [n, embed_dim] float32; one str gives
        [embed_dim]. normalize=False: the raw projection (not unit length)."""
        items, single = _texts(texts, "encode_text")
        out = np.empty((len(items), self.embed_dim), np.float32)
        ctx = self._ctx() if items else None
        for s in range(0, len(items), self.batch):
            chunk = items[s:s + self.batch]
            arr = (ctypes.c_char_p * len(chunk))(*chunk)
            _check(_lib.bmc_encode_text(ctx, arr, len(chunk), out[s].ctypes.data,
                                        int(bool(normalize))))
        return out[0] if single else out

    def encode_ids(self, ids, normalize=True):
        """Embeddings of already tokenized texts: a list of id sequences ([CLS] ... [SEP], each
        1..context_length ids) gives [n, embed_dim]; one sequence of ints gives [embed_dim]."""
        if isinstance(ids, np.ndarray) and ids.ndim == 1 or \
                (isinstance(ids, (list, tuple)) and ids and all(
                    isinstance(x, (int, np.integer)) for x in ids)):
            seqs, single = [ids], True
        else:
            seqs, single = list(ids), False
        arrs = []
        for i, s in enumerate(seqs):
            try:
                a = np.asarray(s, dtype=np.int64)
            except (TypeError, ValueError) as e:
                raise _invalid("encode_ids: item %d is not a sequence of ints (%s)" % (i, e)) \
                    from None
            if a.ndim != 1 or (a.size and (a.min() < -_INT_MAX or a.max() > _INT_MAX)):
                raise _invalid("encode_ids: item %d: want a 1-D sequence of int32 ids" % i)
            arrs.append(a.astype(np.int32))
        out = np.empty((len(arrs), self.embed_dim), np.float32)
        ctx = self._ctx() if arrs else None
        for s in range(0, len(arrs), self.batch):
            chunk = arrs[s:s + self.batch]
            packed = np.ascontiguousarray(np.concatenate(chunk) if chunk else [], np.int32)
            if packed.size == 0:
                packed = np.zeros(1, np.int32)
            lens = np.array([a.size for a in chunk], np.int32)
            _check(_lib.bmc_encode_ids(ctx, packed.ctypes.data, lens.ctypes.data, len(chunk),
                                       out[s].ctypes.data, int(bool(normalize))))
        return out[0] if single else out

    # -- images --
    def encode_image(self, images, normalize=True, pil_16bit=False, frame=None, window=None):
        """Image embeddings: [n, embed_dim] float32 for a list (or 4-D array) of n images,
        [embed_dim] for one image. An image is a file path (str or os.PathLike; every format
        the library decodes), bytes of a file, a numpy uint8 array H x W (gray), H x W x 3
        (RGB) or H x W x 4 (RGBA) of any strides, or a PIL image.

        pil_16bit  16-bit files: clip like PIL instead of scaling (BMC_DECODE_PIL_16BIT)
        frame      files: the 0-based frame (DICOM) or page (TIFF)  } need a library with
        window     files: 'auto', 'minmax', 'file', 'file:K', (C, W) } bmc_image_load_ex
        """
        items, single = _as_items(images, "encode_image")
        opts = _decode_opts(pil_16bit, frame, window)
        out = np.empty((len(items), self.embed_dim), np.float32)
        ctx = self._ctx() if items else None
        for s in range(0, len(items), self.batch):
            chunk = items[s:s + self.batch]
            with _Images(chunk, opts, "encode_image", s) as im:
                _check(_lib.bmc_encode_image(ctx, im.arr, len(chunk), out[s].ctypes.data,
                                             int(bool(normalize))))
        return out[0] if single else out

    def encode_pixels(self, pixels, normalize=True):
        """Embeddings of preprocessed model inputs (what preprocess returns): [3, S, S] gives
        [embed_dim], [n, 3, S, S] gives [n, embed_dim]."""
        a = np.asarray(pixels, dtype=np.float32)
        S = self.image_size
        single = a.ndim == 3
        if single:
            a = a[None]
        if a.ndim != 4 or a.shape[1:] != (3, S, S):
            raise _invalid("encode_pixels: want [3, %d, %d] or [n, 3, %d, %d] floats, got shape "
                           "%s" % (S, S, S, S, np.shape(pixels)))
        a = np.ascontiguousarray(a)
        out = np.empty((a.shape[0], self.embed_dim), np.float32)
        ctx = self._ctx() if a.shape[0] else None
        for s in range(0, a.shape[0], self.batch):
            n = min(self.batch, a.shape[0] - s)
            _check(_lib.bmc_encode_pixels(ctx, a[s].ctypes.data, n, out[s].ctypes.data,
                                          int(bool(normalize))))
        return out[0] if single else out

    def _one_image(self, image, what, fn, out, pil_16bit, frame, window):
        opts = _decode_opts(pil_16bit, frame, window)
        if not _is_image_item(image):
            raise _invalid("%s: want one image (path, bytes, numpy uint8 array, PIL image), got "
                           "%s" % (what, type(image).__name__))
        h = self._live()
        with _Images([image], opts, what) as im:
            _check(fn(h.ptr, im.arr, out.ctypes.data))
        return out

    def preprocess(self, image, pil_16bit=False, frame=None, window=None):
        """The model input of one image: [3, S, S] float32 (S = 224), channel-major, after the
        resize (shorter side to S, PIL bicubic), centre crop, /255 and (x - mean) / std, as
        open_clip's transform."""
        S = self.image_size
        return self._one_image(image, "preprocess", _lib.bmc_image_preprocess,
                               np.empty((3, S, S), np.float32), pil_16bit, frame, window)

    def crop(self, image, pil_16bit=False, frame=None, window=None):
        """The resized and centre-cropped RGB pixels of one image: [S, S, 3] uint8."""
        S = self.image_size
        return self._one_image(image, "crop", _lib.bmc_image_crop,
                               np.empty((S, S, 3), np.uint8), pil_16bit, frame, window)

    # -- zero-shot --
    def zero_shot_probs(self, image_embeddings, text_embeddings):
        """softmax over the texts of logit_scale * cosine(image, text), in double
        (bmc_zero_shot_probs): [n_img, n_txt] float32 ([n_txt] for one 1-D image embedding)."""
        img, img1 = _f32_rows(image_embeddings, "zero_shot_probs: images")
        txt, _ = _f32_rows(text_embeddings, "zero_shot_probs: texts")
        for arr, what in ((img, "image"), (txt, "text")):
            if arr.shape[1] != self.embed_dim:
                raise _invalid("zero_shot_probs: %s embeddings have %d numbers, the model %d"
                               % (what, arr.shape[1], self.embed_dim))
        out = np.empty((img.shape[0], txt.shape[0]), np.float32)
        h = self._live()
        _check(_lib.bmc_zero_shot_probs(h.ptr, img.ctypes.data, img.shape[0],
                                        txt.ctypes.data, txt.shape[0], out.ctypes.data))
        return out[0] if img1 else out

    def classify(self, image, labels, template="this is a photo of ", **decode):
        """Zero-shot classification as in the BiomedCLIP notebook: each label becomes the text
        template + label; returns {label: probability}, most probable first (ties: label
        order). A list of images gives a list of such dicts."""
        if isinstance(labels, str):
            raise _invalid("classify: labels must be a list of str, not one str")
        labels = list(labels)
        if not labels:
            raise _invalid("classify: no labels")
        if len(set(labels)) != len(labels):
            raise _invalid("classify: labels must be distinct (they are the keys of the result)")
        if not isinstance(template, str):
            raise _invalid("classify: template must be a str")
        items, single = _as_items(image, "classify")
        txt = self.encode_text([template + str(x) for x in labels])
        probs = self.zero_shot_probs(self.encode_image(items, **decode), txt) \
            if items else np.empty((0, len(labels)), np.float32)
        res = []
        for row in probs:
            order = np.argsort(-row, kind="stable")
            res.append({labels[j]: float(row[j]) for j in order})
        return res[0] if single else res
