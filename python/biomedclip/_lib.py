"""Loading libbiomedclip.so and declaring the C functions (include/biomedclip.h) for ctypes.

ctypes.CDLL releases the GIL around every foreign call, so the library's long calls (encoders,
decoders, preprocessing) let other Python threads run. Only functions declared in the public
header are used; struct layouts mirror the header's.
"""
import ctypes
import ctypes.util
import os

# The library version this package was written against: the major version must match.
API_MAJOR = 0

c_int, c_float, c_void_p, c_char_p, c_size_t = (ctypes.c_int, ctypes.c_float, ctypes.c_void_p,
                                                 ctypes.c_char_p, ctypes.c_size_t)

BMC_OK = 0
BMC_E_INVALID_ARG = -1
BMC_E_IO = -2
BMC_E_FORMAT = -3
BMC_E_VERSION = -4
BMC_E_CHECKSUM = -5
BMC_E_NOMEM = -6
BMC_E_IMAGE = -7
BMC_E_TOO_LONG = -8
BMC_E_INTERNAL = -99

BMC_PIXEL_GRAY, BMC_PIXEL_RGB, BMC_PIXEL_RGBA = 1, 3, 4
BMC_DECODE_DEFAULT, BMC_DECODE_PIL_16BIT = 0, 1
BMC_MAX_TOKENS = 256
BMC_IMAGE_MAX_SIDE = 32768


class ModelParams(ctypes.Structure):
    _fields_ = [("verify_data", c_int), ("prefault", c_int), ("huge_pages", c_int)]


class CtxParams(ctypes.Structure):
    _fields_ = [("n_threads", c_int), ("max_batch", c_int)]


class Image(ctypes.Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("format", c_int), ("stride", c_int),
                ("pixels", c_void_p), ("internal_", c_void_p)]


# Optional API (include/biomedclip.h of later versions): frame / page / window choices for files.
class LoadParams(ctypes.Structure):
    _fields_ = [("flags", c_int), ("frame", c_int), ("window", c_int), ("window_index", c_int),
                ("window_center", ctypes.c_double), ("window_width", ctypes.c_double)]


class ImageInfo(ctypes.Structure):
    _fields_ = [("format", ctypes.c_char * 16), ("mode", ctypes.c_char * 8), ("width", c_int),
                ("height", c_int), ("bits_stored", c_int), ("n_frames", c_int), ("frame", c_int),
                ("photometric", ctypes.c_char * 32), ("transfer_syntax", ctypes.c_char * 128),
                ("window", ctypes.c_char * 128)]


P = ctypes.POINTER
_PROTOTYPES = {
    # name: (restype, argtypes)
    "bmc_status_str": (c_char_p, [c_int]),
    "bmc_last_error": (c_char_p, []),
    "bmc_version_number": (c_int, []),
    "bmc_version_string": (c_char_p, []),
    "bmc_system_info": (c_char_p, []),
    "bmc_model_default_params": (ModelParams, []),
    "bmc_model_load": (c_int, [c_char_p, P(ModelParams), P(c_void_p)]),
    "bmc_model_free": (None, [c_void_p]),
    "bmc_model_embed_dim": (c_int, [c_void_p]),
    "bmc_model_image_size": (c_int, [c_void_p]),
    "bmc_model_context_length": (c_int, [c_void_p]),
    "bmc_model_vocab_size": (c_int, [c_void_p]),
    "bmc_model_logit_scale": (c_float, [c_void_p]),
    "bmc_model_n_params": (ctypes.c_int64, [c_void_p]),
    "bmc_model_n_tensors": (c_int, [c_void_p]),
    "bmc_model_file_size": (ctypes.c_uint64, [c_void_p]),
    "bmc_model_token": (c_void_p, [c_void_p, c_int, P(c_size_t)]),
    "bmc_model_describe": (c_int, [c_void_p, c_char_p, c_size_t]),
    "bmc_ctx_default_params": (CtxParams, []),
    "bmc_ctx_new": (c_int, [c_void_p, P(CtxParams), P(c_void_p)]),
    "bmc_ctx_free": (None, [c_void_p]),
    "bmc_tokenize": (c_int, [c_void_p, c_char_p, c_void_p, c_int, P(c_int)]),
    "bmc_encode_text": (c_int, [c_void_p, P(c_char_p), c_int, c_void_p, c_int]),
    "bmc_encode_ids": (c_int, [c_void_p, c_void_p, c_void_p, c_int, c_void_p, c_int]),
    "bmc_image_load": (c_int, [c_char_p, c_int, P(Image)]),
    "bmc_image_load_memory": (c_int, [c_void_p, c_size_t, c_int, P(Image)]),
    "bmc_image_free": (None, [P(Image)]),
    "bmc_image_crop": (c_int, [c_void_p, P(Image), c_void_p]),
    "bmc_image_preprocess": (c_int, [c_void_p, P(Image), c_void_p]),
    "bmc_encode_image": (c_int, [c_void_p, P(Image), c_int, c_void_p, c_int]),
    "bmc_encode_pixels": (c_int, [c_void_p, c_void_p, c_int, c_void_p, c_int]),
    "bmc_similarity": (c_int, [c_void_p, c_int, c_void_p, c_int, c_int, c_void_p]),
    "bmc_zero_shot_probs": (c_int, [c_void_p, c_void_p, c_int, c_void_p, c_int, c_void_p]),
}
_OPTIONAL = {
    "bmc_load_default_params": (LoadParams, []),
    "bmc_image_load_ex": (c_int, [c_char_p, P(LoadParams), P(Image)]),
    "bmc_image_load_memory_ex": (c_int, [c_void_p, c_size_t, P(LoadParams), P(Image)]),
    "bmc_image_get_info": (c_int, [P(Image), P(ImageInfo)]),
}

LIB_NAMES = ("libbiomedclip.so", "libbiomedclip.so.%d" % API_MAJOR)


def _candidates():
    """Where to look, in order: $BIOMEDCLIP_LIB (a file, or a directory holding the library),
    the package's own directory (the copy `pip install` puts there), then the system's search
    path (ldconfig cache, LD_LIBRARY_PATH, ...)."""
    env = os.environ.get("BIOMEDCLIP_LIB")
    if env:
        if os.path.isdir(env):
            yield from (os.path.join(env, n) for n in LIB_NAMES)
        else:
            yield env
        return  # an explicit choice is not silently replaced by another library
    here = os.path.dirname(os.path.abspath(__file__))
    for n in LIB_NAMES:
        p = os.path.join(here, n)
        if os.path.exists(p):
            yield p
    yield from ("libbiomedclip.so.%d" % API_MAJOR, "libbiomedclip.so")
    found = ctypes.util.find_library("biomedclip")
    if found:
        yield found


def load():
    """(CDLL, path) of the first library found; OSError naming every place tried otherwise."""
    tried = []
    for cand in _candidates():
        try:
            lib = ctypes.CDLL(cand)
        except OSError as e:
            tried.append("%s (%s)" % (cand, e))
            continue
        _declare(lib, cand)
        return lib, cand
    raise OSError("biomedclip: libbiomedclip.so not found; tried: %s. Install the package with the "
                  "library built (make; pip install ./python), set BIOMEDCLIP_LIB to the .so, or "
                  "install the library (make install)" % "; ".join(tried))


def _declare(lib, path):
    for name, (res, args) in _PROTOTYPES.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            raise OSError("biomedclip: %s lacks %s (an older or foreign library?)" % (path, name))
        f.restype, f.argtypes = res, args
    for name, (res, args) in _OPTIONAL.items():
        f = getattr(lib, name, None)
        if f is not None:
            f.restype, f.argtypes = res, args
    major = lib.bmc_version_number() // 10000
    if major != API_MAJOR:
        raise OSError("biomedclip: %s is version %s; this package needs %d.x" %
                      (path, lib.bmc_version_string().decode(), API_MAJOR))


def has(lib, name):
    return getattr(lib, name, None) is not None
