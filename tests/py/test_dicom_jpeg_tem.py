#!/usr/bin/python3
"""A JPEG fragment whose markers lead to a TEM marker (0xFF01) before the frame header is refused
before DCMTK decodes it (DCMTK 3.6.7's dcmjpeg walks the markers of a frame's first fragment to
find the bit depth, and does not move on at a TEM: it loops forever; fuzz_dicom found it,
docs/ROBUSTNESS.md F13). A baseline JPEG file made by DCMTK's dcmcjpeg decodes; the same file
with a TEM right after the start of image gets exit 1, promptly, and a message naming the
fragment and the offset, under the plain build and under ASan (CI's second pass)."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "biomedclip")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def info(path):
    """(exit status, stderr) of info-image, or (None, ...) if it did not end within 60 s."""
    try:
        p = subprocess.run([BIN, "info-image", path], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr.strip()
    except subprocess.TimeoutExpired:
        return None, "no answer within 60 s"


def main():
    if "DICOM=none" in subprocess.run([BIN, "info-image", "--help"], capture_output=True, text=True).stdout:
        print("built without DICOM: nothing to check")
        return 0
    if not shutil.which("dcmcjpeg"):
        print("FAIL dcmcjpeg (Debian dcmtk) is needed")
        return 1
    tmp = tempfile.mkdtemp(prefix="bmc-tem-")
    try:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
        ds.Rows, ds.Columns, ds.SamplesPerPixel = 30, 40, 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = (np.arange(1200, dtype=np.uint32) % 251).astype(np.uint8).tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        raw, jpg = os.path.join(tmp, "raw.dcm"), os.path.join(tmp, "jpeg.dcm")
        ds.save_as(raw, write_like_original=False)
        subprocess.run(["dcmcjpeg", "+eb", raw, jpg], check=True)  # JPEG baseline (process 1)
        data = open(jpg, "rb").read()
        at = data.find(b"\xff\xd8\xff")  # the fragment's start of image and its first marker
        check(at > 0, "dcmcjpeg's file holds a JPEG stream")
        rc, err = info(jpg)
        check(rc == 0, "the intact JPEG file decodes: " + err)
        bad = os.path.join(tmp, "tem.dcm")
        with open(bad, "wb") as f:
            f.write(data[:at + 2] + b"\xff\x01" + data[at + 4:])  # the first marker becomes a TEM
        rc, err = info(bad)
        check(rc == 1 and "JPEG fragment 1: TEM marker (0xFF01) at offset 2" in err and "Sanitizer" not in err,
              "a TEM before the frame header: refused: %s" % err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
