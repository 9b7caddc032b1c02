#!/usr/bin/python3
"""RLE fragments whose header does not fit the fragment are refused before DCMTK decodes them
(DCMTK 3.6.7's RLE decoder reads a segment at whatever offset the header gives: fuzz_dicom found
an offset of 83,886,204 in a 1,054-byte fragment crash it; docs/ROBUSTNESS.md F11). An RLE file
made by DCMTK's dcmcrle decodes; the same file with a segment offset past the fragment, a wrong
segment count, or offsets out of order gets exit 1 and a message naming the fragment, under the
plain build and under ASan (CI's second pass)."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
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


def main():
    if "DICOM=none" in subprocess.run([BIN, "info-image", "--help"], capture_output=True, text=True).stdout:
        print("built without DICOM: nothing to check")
        return 0
    if not shutil.which("dcmcrle"):
        print("FAIL dcmcrle (Debian dcmtk) is needed")
        return 1
    tmp = tempfile.mkdtemp(prefix="bmc-rle-")
    try:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
        ds.Rows, ds.Columns, ds.SamplesPerPixel = 30, 30, 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = (np.arange(900, dtype=np.uint16).reshape(30, 30) * 4).tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        raw, rle = os.path.join(tmp, "raw.dcm"), os.path.join(tmp, "rle.dcm")
        ds.save_as(raw, write_like_original=False)
        subprocess.run(["dcmcrle", raw, rle], check=True)
        data = open(rle, "rb").read()
        at = data.find(struct.pack("<II", 2, 64))  # the RLE header: 2 segments, the first at 64
        check(at > 0, "dcmcrle's file holds an RLE header of 2 segments")
        p = subprocess.run([BIN, "info-image", rle], capture_output=True, text=True)
        check(p.returncode == 0, "the intact RLE file decodes: " + p.stderr.strip())
        cases = {
            "offset past the fragment": (struct.pack("<II", 2, 64) + struct.pack("<I", 83886204), "outside the fragment"),
            "wrong segment count": (struct.pack("<II", 3, 64), "has 3 segments, the image needs 2"),
            "offsets out of order": (struct.pack("<III", 2, 64, 64), "out of order"),
            "segment before the header": (struct.pack("<II", 2, 8), "outside the fragment"),
        }
        for what, (patch, message) in cases.items():
            bad = os.path.join(tmp, "bad.dcm")
            with open(bad, "wb") as f:
                f.write(data[:at] + patch + data[at + len(patch):])
            p = subprocess.run([BIN, "info-image", bad], capture_output=True, text=True)
            check(p.returncode == 1 and message in p.stderr and "RLE fragment 1" in p.stderr and
                  "Sanitizer" not in p.stderr, "%s: refused: %s" % (what, p.stderr.strip()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
