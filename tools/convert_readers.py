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

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "F64": 8}


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

_STORAGE_DTYPES = {"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
                   "LongStorage": "I64"}


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
        raise ConvertError("refusing pickle global %s.%s" % (module, name))

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
    """Return (state dict of TensorRef or other values, cleanup function)."""
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
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    out = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError("%s: state_dict key %r is not a string" % (path, k))
        out[k] = wrap(k, v)
    return out, zf.close


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
        return out, f.close
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
