"""convert_readers.py - the checkpoint readers of tools/convert.py (standard library only).

torch.save zip archives (through a restricted unpickler that admits only what a state_dict needs)
and safetensors files become ordered dicts of TensorRef: dtype, shape and a function that reads
the tensor's raw little-endian bytes when the writer asks for them, so one storage at a time is in
memory. to_f32_bytes widens F16/BF16 to F32 with whole-buffer operations.
"""
import collections
import json
import os
import pickle
import struct
import sys
import zipfile
from array import array


class ConvertError(Exception):
    pass


def shape_str(shape):
    return "[%s]" % ",".join(str(d) for d in shape)  # as the C loader writes shapes


# ---- tensors as references into storages (nothing is read until it is written) ----------------

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "F64": 8,
              "BOOL": 1}
DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
               "I16": "int16", "I8": "int8", "U8": "uint8", "F64": "float64", "BOOL": "bool"}


class TensorRef:
    """A tensor in the source: dtype, shape, and a way to read its raw little-endian bytes."""

    def __init__(self, dtype, shape, read):
        self.dtype = dtype
        self.shape = tuple(shape)
        self.read = read  # () -> bytes of numel * itemsize

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n


# ---- torch.save zip + restricted unpickler -------------------------------------------------

# Every typed storage torch.save writes: training leftovers (an optimizer's int step counters,
# a bool mask) use the others, and naming them lets the reader skip those without refusing.
_STORAGE_DTYPES = {"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
                   "LongStorage": "I64", "DoubleStorage": "F64", "IntStorage": "I32",
                   "ShortStorage": "I16", "CharStorage": "I8", "ByteStorage": "U8", "BoolStorage": "BOOL"}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    def __init__(self, dtype, key, numel):
        self.dtype = dtype
        self.key = key
        self.numel = numel


class _PickledTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise ConvertError("pickle: _rebuild_tensor_v2 called without a storage")
    if not is_int(storage_offset) or storage_offset < 0:
        raise ConvertError("pickle: bad storage offset %r" % (storage_offset,))
    if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride) \
            or not all(is_int(v) and v >= 0 for v in size + stride):
        raise ConvertError("pickle: bad tensor size %r / stride %r" % (size, stride))
    return _PickledTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, _PickledTensor):
        raise ConvertError("pickle: _rebuild_parameter called without a tensor")
    return data


class RestrictedUnpickler(pickle.Unpickler):
    """Admits only what a plain state_dict needs; any other global is refused by name."""

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        # Never imported, never called: a checkpoint that pickles other objects (an argparse
        # Namespace of training options, numpy scalars) is refused by name, with the way out.
        raise ConvertError("refusing pickle global %s.%s (only tensors, dicts, lists and plain values are "
                           "read; save the weights alone: torch.save(model.state_dict(), PATH))" % (module, name))

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and is_int(pid[4]) and pid[4] >= 0):
            raise ConvertError("refusing pickle persistent id %r" % (pid,))
        return _Storage(pid[1].dtype, pid[2], pid[4])


def _contiguous_strides(size):
    strides, acc = [], 1
    for d in reversed(size):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def read_torch_zip(path):
    """Return (state dict of TensorRef or other values, cleanup function, info dict: format,
    container, epoch/name when present, the other top-level entries, the unread storages)."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise ConvertError("%s: not a torch.save zip archive (%s); the legacy non-zip torch format "
                           "is not supported" % (path, e))
    names = zf.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ConvertError("%s: expected exactly one <prefix>/data.pkl, found %d" % (path, len(pkls)))
    prefix = pkls[0][: -len("data.pkl")]
    if prefix + "byteorder" in names:
        order = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if order != "little":
            raise ConvertError("%s: storages are %s-endian; only little-endian is supported" % (path, order))
    with zf.open(pkls[0]) as f:
        try:
            obj = RestrictedUnpickler(f).load()
        except ConvertError:
            raise
        except Exception as e:  # malformed pickle: any exception the unpickler raises
            raise ConvertError("%s: cannot read data.pkl: %s: %s" % (path, type(e).__name__, e))
    infos = {i.filename: i for i in zf.infolist()}

    def wrap(key, t):
        if not isinstance(t, _PickledTensor):
            return t
        st = t.storage
        member = prefix + "data/" + st.key
        if member not in infos:
            raise ConvertError("%s: tensor %s: storage %s missing from the archive" % (path, key, member))
        itemsize = DTYPE_SIZE[st.dtype]
        numel = 1
        for d in t.size:
            numel *= d
        if numel > 1:
            want = _contiguous_strides(t.size)
            for d, s, w in zip(t.size, t.stride, want):
                if d != 1 and s != w:
                    raise ConvertError("tensor %s: non-contiguous (size %s, stride %s); save it with "
                                       ".contiguous() first" % (key, shape_str(t.size), shape_str(t.stride)))
        have = infos[member].file_size // itemsize
        if t.offset + numel > min(st.numel, have):
            raise ConvertError("tensor %s: elements [%d, %d) overrun its storage %s of %d elements "
                               "(%d in the archive)" % (key, t.offset, t.offset + numel, st.key,
                                                       st.numel, have))

        def read(member=member, start=t.offset * itemsize, n=numel * itemsize, key=key):
            with zf.open(member) as f:
                if start:
                    f.seek(start)
                b = f.read(n)
            if len(b) != n:
                raise ConvertError("tensor %s: short read from %s" % (key, member))
            return b

        return TensorRef(st.dtype, t.size, read)

    if not isinstance(obj, dict):
        raise ConvertError("%s: data.pkl holds a %s, not a state_dict" % (path, type(obj).__name__))
    sd, info = find_state_dict(obj, path, _PickledTensor)
    out = collections.OrderedDict()
    for k, v in sd.items():
        if not isinstance(k, str):
            raise ConvertError("%s: state_dict key %r is not a string" % (path, k))
        out[k] = wrap(k, v)
    # Storages the state_dict does not reference (optimizer moments, EMA copies...) are never
    # opened: only their sizes, from the zip directory, go into the report.
    used = {prefix + "data/" + v.storage.key for v in sd.values() if isinstance(v, _PickledTensor)}
    info["unread_storages"] = sum(1 for n in infos if n.startswith(prefix + "data/") and n not in used)
    info["unread_bytes"] = sum(i.file_size for n, i in infos.items() if n.startswith(prefix + "data/")
                               and n not in used)
    info["format"] = "torch.save zip"
    return out, zf.close, info


# Where training scripts keep the model's weights inside a checkpoint dict, in the order tried:
# open_clip's training script ("state_dict"), the PyTorch tutorials' "model_state_dict", and the
# common "model" / "module" / "net" of hand-written loops.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")


def _holds_tensors(d, tensor_type):
    return isinstance(d, dict) and any(isinstance(v, tensor_type) for v in d.values())


def find_state_dict(obj, path, tensor_type):
    """The state_dict inside a torch.save'd dict: the dict itself when it holds tensors, else the
    entry named in STATE_DICT_KEYS, else the only entry that is a dict of tensors. Returns
    (state_dict, info) where info says where it was and what else the file holds."""
    info = {"container": "plain state_dict", "skipped": []}
    if _holds_tensors(obj, tensor_type):
        return obj, info
    key = next((k for k in STATE_DICT_KEYS if _holds_tensors(obj.get(k), tensor_type)), None)
    if key is None:
        found = [k for k, v in obj.items() if _holds_tensors(v, tensor_type)]
        if len(found) != 1:
            raise ConvertError("%s: cannot find the model's state_dict: the file holds a dict with keys %s, "
                               "and %s" % (path, ", ".join(repr(k) for k in list(obj)[:12]),
                                           "none of them is a dict of tensors" if not found else
                                           "several are: %s (save the one to convert alone)"
                                           % ", ".join(map(repr, found))))
        key = found[0]
    # open_clip's training script saves exactly these keys (scaler with AMP); Lightning's own
    # "epoch" + "state_dict" come with many more
    open_clip = key == "state_dict" and "epoch" in obj and set(obj) <= {"epoch", "name", "state_dict", "optimizer",
                                                                          "scaler"}
    info["container"] = "open_clip training checkpoint" if open_clip else "checkpoint dict, weights under %r" % key
    info["key"] = key
    for k in ("epoch", "name", "step", "global_step"):
        v = obj.get(k)
        if isinstance(v, (int, str)) and not isinstance(v, bool):
            info[k] = v
    info["skipped"] = [str(k) for k in obj if k != key and k not in info]
    return obj[key], info


# ---- safetensors ----------------------------------------------------------------------------

def read_safetensors(path):
    f = open(path, "rb")
    try:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) != 8:
            raise ConvertError("%s: too short for safetensors" % path)
        (n,) = struct.unpack("<Q", head)
        if n > 100 * 1024 * 1024 or 8 + n > size:
            raise ConvertError("%s: safetensors header length %d does not fit the file" % (path, n))
        try:
            meta = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ConvertError("%s: safetensors header is not JSON: %s" % (path, e))
        if not isinstance(meta, dict):
            raise ConvertError("%s: safetensors header is not an object" % path)
        base = 8 + n
        out = collections.OrderedDict()
        for key, info in meta.items():
            if key == "__metadata__":
                continue
            try:
                dtype, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise ConvertError("%s: tensor %s: malformed header entry" % (path, key))
            if dtype not in DTYPE_SIZE:
                raise ConvertError("%s: tensor %s: unsupported dtype %s" % (path, key, dtype))
            if not isinstance(shape, list) or not all(is_int(d) and d >= 0 for d in shape) \
                    or not is_int(b) or not is_int(e):
                raise ConvertError("%s: tensor %s: malformed shape/offsets" % (path, key))
            t = TensorRef(dtype, shape, None)
            nbytes = t.numel * DTYPE_SIZE[dtype]
            if e - b != nbytes or b < 0 or base + e > size:
                raise ConvertError("%s: tensor %s: data_offsets [%d, %d) do not hold %d bytes inside "
                                   "the file" % (path, key, b, e, nbytes))

            def read(start=base + b, n=nbytes, key=key):
                f.seek(start)
                data = f.read(n)
                if len(data) != n:
                    raise ConvertError("tensor %s: short read" % key)
                return data

            t.read = read
            out[key] = t
        return out, f.close, {"format": "safetensors", "container": "plain state_dict", "skipped": []}
    except BaseException:
        f.close()
        raise


# ---- dtype widening -------------------------------------------------------------------------

def to_f32_bytes(t, key):
    raw = t.read()
    if t.dtype == "F32":
        return raw
    if t.dtype == "BF16":  # bf16 is the high half of a float32: put it there, zero the low half
        out = bytearray(len(raw) * 2)
        out[2::4] = raw[0::2]
        out[3::4] = raw[1::2]
        return bytes(out)
    if t.dtype == "F16":
        out = array("f")
        chunk = 1 << 20
        mv = memoryview(raw)
        for i in range(0, len(raw), 2 * chunk):
            part = mv[i: i + 2 * chunk]
            out.extend(struct.unpack("<%de" % (len(part) // 2), part))
        if sys.byteorder != "little":
            out.byteswap()
        return out.tobytes()
    raise ConvertError("tensor %s: dtype %s is not a float type" % (key, t.dtype))
