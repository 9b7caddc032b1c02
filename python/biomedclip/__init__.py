"""biomedclip: BiomedCLIP (ViT-B/16 image tower + PubMedBERT text tower) over libbiomedclip.

    import biomedclip
    m = biomedclip.Model("weights/biomedclip.bmc")
    img = m.encode_image(["chest_X-ray.jpg", "brain_MRI.jpg"])     # [2, 512] float32
    txt = m.encode_text(["chest X-ray", "brain MRI"])             # [2, 512] float32
    print(biomedclip.similarity(img, txt))                        # [2, 2] cosines
    print(m.classify("chest_X-ray.jpg", ["chest X-ray", "brain MRI", "pie chart"]))

numpy is the only dependency; the C library is loaded with ctypes (docs/PYTHON.md).
"""
from ._core import (ChecksumError, Error, FileError, FormatError, ImageError, InternalError,
                    InvalidArgumentError, Model, OutOfMemoryError, TooLongError, VersionError,
                    image_info, library_path, library_version, similarity, system_info)
from .helpers import NOTEBOOK_TEMPLATE, Hit, Index, zero_shot, zero_shot_table

__version__ = "0.1.0"

__all__ = ["Model", "Index", "Hit", "similarity", "image_info", "zero_shot", "zero_shot_table",
           "NOTEBOOK_TEMPLATE", "library_path", "library_version", "system_info", "Error",
           "InvalidArgumentError", "FileError", "FormatError", "VersionError", "ChecksumError",
           "OutOfMemoryError", "ImageError", "TooLongError", "InternalError"]
