/* image_dicom.cc - DICOM images through DCMTK (docs/IMAGE.md, "DICOM").
 *
 * DCMTK parses the file (Part 10 or a bare dataset), and decompresses one frame (RLE, JPEG
 * through dcmjpeg, JPEG-LS through dcmjpls) into its stored values. Everything after that is
 * ours, in plain code, so that the rule of docs/IMAGE.md is followed exactly and can be
 * reproduced with pydicom: stored values -> Modality LUT (rescale or LUT sequence) -> VOI
 * (window with its function, VOI LUT, or min-max) -> floor(255 y + 0.5) -> MONOCHROME1 /
 * INVERSE inversion. Colour is converted to RGB (YBR_FULL, YBR_FULL_422, PALETTE COLOR).
 *
 * DCMTK is C++: every exception stops at this file's C boundary, its logger is switched off
 * (it would print to stderr), and the input is read from memory through a stream whose factory
 * defers large values, so that a length field is never allocated before the bytes are known to
 * be there. */
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcistrma.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

extern "C" {
#include "error.h"
#include "image.h"
}

namespace {

/* ---- reading from memory -------------------------------------------------------------------- */

class MemStream;

/* Lets DCMTK come back for a value later (DcmElement::loadValue), as it does with files: values
 * longer than the read limit are skipped at parse time, which fails when the bytes are not
 * there, and loaded only when asked for, so no allocation exceeds the input's size. */
class MemFactory : public DcmInputStreamFactory {
public:
    MemFactory(const void *data, size_t size, offile_off_t at) : data_(data), size_(size), at_(at) {}
    DcmInputStream *create() const override;
    DcmInputStreamFactory *clone() const override { return new MemFactory(data_, size_, at_); }
    DcmInputStreamFactoryType ident() const override { return DFT_DcmInputFileStreamFactory; }
private:
    const void *data_;
    size_t size_;
    offile_off_t at_;
};

class MemStream : public DcmInputStream {
public:
    MemStream(const void *data, size_t size) : DcmInputStream(&producer_), producer_(), data_(data), size_(size) {
        producer_.setBuffer(data, (offile_off_t)size);
        producer_.setEos();
    }
    DcmInputStreamFactory *newFactory() const override {
        /* with a filter (deflate) the position is in inflated bytes: no factory, as for files */
        if (currentProducer() != &producer_) return NULL;
        return new MemFactory(data_, size_, tell());
    }
private:
    DcmBufferProducer producer_;
    const void *data_;
    size_t size_;
};

DcmInputStream *MemFactory::create() const {
    MemStream *s = new MemStream(data_, size_);
    s->skip(at_);
    return s;
}

/* Values up to this size are read while parsing; larger ones (pixel data) on demand. */
const Uint32 READ_NOW = 64 * 1024;

/* ---- one-time set-up ------------------------------------------------------------------------ */

std::once_flag g_once;
bool g_registered;

void setup_dcmtk() {
    g_registered = true;
    /* DCMTK logs warnings and errors to stderr by default; a library must stay silent (the
     * errors reach the caller through bmc_last_error) */
    OFLog::getLogger("dcmtk").setLogLevel(OFLogger::OFF_LOG_LEVEL);
    DcmRLEDecoderRegistration::registerCodecs();
    /* JPEG frames come out in the colour space they were stored in (YCbCr stays YCbCr) and we
     * convert YBR_FULL to RGB ourselves, with one formula for every transfer syntax, so that a
     * lossless JPEG of a YBR_FULL image equals its uncompressed twin; planar configuration as
     * the dataset declares it */
    DJDecoderRegistration::registerCodecs(EDC_never);
    DJLSDecoderRegistration::registerCodecs();
}

/* The codecs' registrations are DCMTK globals that only deregistration frees: done when the
 * library is unloaded or the program exits (valgrind would report them lost otherwise). DCMTK's
 * own libraries are finalised after this one, so its lists still exist here. */
__attribute__((destructor)) void cleanup_dcmtk() {
    if (!g_registered) return;
    DJLSDecoderRegistration::cleanup();
    DJDecoderRegistration::cleanup();
    DcmRLEDecoderRegistration::cleanup();
}

/* ---- small helpers -------------------------------------------------------------------------- */

std::string uid_name(const char *uid) {
    const char *n = uid && *uid ? dcmFindNameOfUID(uid, NULL) : NULL;
    return n ? n : "unknown";
}

/* A failure inside this file: a message for bmc__fail. */
struct Fail {
    bmc_status st;
    std::string msg;
};

[[noreturn]] void fail(bmc_status st, const std::string &msg) { throw Fail{st, msg}; }

std::string fmt(const char *f, ...) BMC__PRINTF(1, 2);
std::string fmt(const char *f, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

/* DCMTK 3.6.7's RLE decoder reads each segment at the offset the fragment's RLE header gives
 * without checking it against the fragment (a crafted offset makes it read far past the buffer:
 * found by fuzz_dicom), so every fragment's header is checked here first (PS3.5 G.5: one
 * fragment a frame, a 64-byte header of the segment count, one segment per byte of a sample,
 * and rising offsets inside the fragment). */
void check_rle(DcmPixelData *pd, E_TransferSyntax xfer, unsigned segments, const char *name) {
    DcmPixelSequence *seq = NULL;
    if (pd->getEncapsulatedRepresentation(xfer, NULL, seq).bad() || !seq)
        fail(BMC_E_IMAGE, fmt("%s: RLE Pixel Data without fragments (corrupt)", name));
    unsigned long n = seq->card();
    for (unsigned long i = 1; i < n; i++) { /* item 0 is the offset table */
        DcmPixelItem *item = NULL;
        Uint8 *data = NULL;
        if (seq->getItem(item, i).bad() || !item || item->getUint8Array(data).bad())
            fail(BMC_E_IMAGE, fmt("%s: RLE fragment %lu cannot be read (corrupt)", name, i));
        Uint32 len = item->getLength();
        if (len < 64 || !data)
            fail(BMC_E_IMAGE, fmt("%s: RLE fragment %lu of %u bytes has no 64-byte RLE header (corrupt)", name, i,
                                  (unsigned)len));
        Uint32 h[16];
        for (int k = 0; k < 16; k++)
            h[k] = (Uint32)data[4 * k] | (Uint32)data[4 * k + 1] << 8 | (Uint32)data[4 * k + 2] << 16 |
                   (Uint32)data[4 * k + 3] << 24;
        if (h[0] != segments)
            fail(BMC_E_IMAGE, fmt("%s: RLE fragment %lu has %u segments, the image needs %u (corrupt)", name, i,
                                  (unsigned)h[0], segments));
        for (unsigned k = 1; k <= segments; k++)
            if (h[k] < 64 || h[k] >= len || (k > 1 && h[k] <= h[k - 1]))
                fail(BMC_E_IMAGE, fmt("%s: RLE fragment %lu: segment %u at offset %u, outside the fragment's %u "
                                      "bytes or out of order (corrupt)", name, i, k, (unsigned)h[k], (unsigned)len));
    }
}

/* DCMTK 3.6.7's JPEG decoder (dcmjpeg) first walks the markers of a frame's first fragment to
 * find the frame header (DJCodecDecoder::scanJpegDataForBitDepth), and a TEM marker (0xFF01) does
 * not move that walk on: it loops forever (found by fuzz_dicom). The same walk here refuses such
 * a fragment first; every fragment is walked, since a continuation fragment of a valid stream
 * cannot reach a TEM that way (entropy-coded data has no 0xFF01). */
void check_jpeg(DcmPixelData *pd, E_TransferSyntax xfer, const char *name) {
    DcmPixelSequence *seq = NULL;
    if (pd->getEncapsulatedRepresentation(xfer, NULL, seq).bad() || !seq)
        fail(BMC_E_IMAGE, fmt("%s: JPEG Pixel Data without fragments (corrupt)", name));
    unsigned long n = seq->card();
    for (unsigned long i = 1; i < n; i++) { /* item 0 is the offset table */
        DcmPixelItem *item = NULL;
        Uint8 *d = NULL;
        if (seq->getItem(item, i).bad() || !item || item->getUint8Array(d).bad())
            fail(BMC_E_IMAGE, fmt("%s: JPEG fragment %lu cannot be read (corrupt)", name, i));
        unsigned long long len = item->getLength(), off = 0;
        while (d && off + 4 < len) {
            unsigned m = (unsigned)d[off] << 8 | d[off + 1];
            if (m == 0xff01)
                fail(BMC_E_IMAGE, fmt("%s: JPEG fragment %lu: TEM marker (0xFF01) at offset %llu before the frame "
                                      "header (corrupt)", name, i, off));
            bool sof = m >= 0xffc0 && m <= 0xffcf && m != 0xffc4 && m != 0xffc8 && m != 0xffcc;
            if (sof) break;
            if (m == 0xffff) off += 1; /* a fill byte */
            else if (m >= 0xffd0 && m <= 0xffd9) off += 2; /* RSTn, SOI, EOI: no length */
            else if (m == 0xffc4 || m == 0xffc8 || m == 0xffcc || (m >= 0xffda && m <= 0xfffe))
                off += ((unsigned)d[off + 2] << 8 | d[off + 3]) + 2ull; /* a segment with its length */
            else if (d[off] == 0xff && d[off + 1] > 2 && d[off + 1] <= 0xbf) off += 2; /* reserved */
            else break; /* DCMTK stops here with an error of its own */
        }
    }
}

/* A 16-bit descriptor value that may be US or SS (LUT descriptors' "first mapped"). */
long lut_first(Uint16 raw, bool signed_pixels) { return signed_pixels && raw >= 0x8000 ? (long)(Sint16)raw : (long)raw; }

/* A LUT (Modality or VOI LUT Sequence item): entries, first mapped value, bits per entry. */
struct Lut {
    long first = 0;
    int bits = 0;
    std::vector<Uint16> data;
    /* the entry for value x (rounded half up), clamped to the table's ends */
    double at(double x) const {
        double r = std::floor(x + 0.5) - (double)first;
        long i = r <= 0 ? 0 : r >= (double)(data.size() - 1) ? (long)data.size() - 1 : (long)r;
        return data[(size_t)i];
    }
};

bool read_lut(DcmItem *item, bool signed_pixels, Lut *lut, std::string *why) {
    Uint16 n = 0, first = 0, bits = 0;
    if (item->findAndGetUint16(DCM_LUTDescriptor, n, 0).bad() ||
        item->findAndGetUint16(DCM_LUTDescriptor, first, 1).bad() ||
        item->findAndGetUint16(DCM_LUTDescriptor, bits, 2).bad()) {
        *why = "LUT Descriptor missing or not 3 values";
        return false;
    }
    const Uint16 *d = NULL;
    unsigned long count = 0;
    if (item->findAndGetUint16Array(DCM_LUTData, d, &count).bad() || !d || count == 0) {
        *why = "LUT Data missing";
        return false;
    }
    size_t entries = n == 0 ? 65536 : n; /* PS3.3 C.11.1.1: 0 means 2^16 */
    if (bits < 1 || bits > 16) {
        *why = fmt("LUT Descriptor bits %u (want 1..16)", (unsigned)bits);
        return false;
    }
    if (count < entries) {
        *why = fmt("LUT Data holds %lu entries, the descriptor declares %zu", count, entries);
        return false;
    }
    lut->first = lut_first(first, signed_pixels);
    lut->bits = bits;
    lut->data.assign(d, d + entries);
    return true;
}

/* The decoder's state for one file. */
struct Dicom {
    const char *name;
    const bmc__decode_opts *o;
    DcmDataset *ds = NULL;
    DcmItem *frame_groups = NULL;  /* Per-frame Functional Groups item of the frame, if any  */
    DcmItem *shared_groups = NULL; /* Shared Functional Groups item, if any                  */
    Uint16 rows = 0, cols = 0, spp = 1, alloc = 0, stored = 0, high = 0, pixrep = 0, planar = 0;
    long frames = 1;
    std::string photometric, ts;

    /* A value looked up in the frame's functional groups (sequence `seq`, first item), then the
     * shared ones, then the dataset itself (Enhanced multi-frame objects keep rescale and
     * windows in the functional groups). Returns the item holding `tag`, or NULL. */
    DcmItem *find(const DcmTagKey &seq, const DcmTagKey &tag) {
        DcmItem *groups[2] = {frame_groups, shared_groups};
        for (DcmItem *g : groups) {
            DcmItem *it = NULL;
            if (g && g->findAndGetSequenceItem(seq, it, 0).good() && it && it->tagExistsWithValue(tag)) return it;
        }
        return ds->tagExistsWithValue(tag) ? ds : NULL;
    }
};

/* ---- stored values to 8 bits --------------------------------------------------------------- */

/* PS3.3 C.11.2.1.2.1 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT), C.11.2.1.3.1 (SIGMOID), with
 * ymin = 0 and ymax = 1. */
enum VoiFunc { LINEAR, LINEAR_EXACT, SIGMOID };

double window_y(double x, double c, double w, VoiFunc f) {
    switch (f) {
    case LINEAR:
        if (x <= c - 0.5 - (w - 1) / 2) return 0;
        if (x > c - 0.5 + (w - 1) / 2) return 1;
        return (x - (c - 0.5)) / (w - 1) + 0.5; /* w > 1 here: w == 1 leaves no x between */
    case LINEAR_EXACT:
        if (x <= c - w / 2) return 0;
        if (x > c + w / 2) return 1;
        return (x - c) / w + 0.5;
    case SIGMOID:
        return 1 / (1 + std::exp(-4 * (x - c) / w));
    }
    return 0;
}

uint8_t to8(double y) {
    double v = std::floor(255 * y + 0.5);
    return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v);
}

/* The stored value of sample i of a frame buffer (native byte order, as DCMTK returns it). */
struct Samples {
    const uint8_t *buf;
    int alloc, shift;
    uint32_t mask;
    bool sign;
    long get(size_t i) const {
        uint32_t v = alloc == 8 ? buf[i] : alloc == 16 ? ((const uint16_t *)buf)[i] : ((const uint32_t *)buf)[i];
        v = (v >> shift) & mask;
        if (sign) { /* two's complement in bits stored */
            uint32_t top = mask == 0xffffffffu ? 0x80000000u : (mask >> 1) + 1;
            if (v & top) return (long)((long long)v - (long long)mask - 1);
        }
        return (long)v;
    }
};

/* Grayscale: Modality LUT, VOI, inversion (docs/IMAGE.md). Writes n bytes to out and the rule
 * used to info->window. */
void gray_to_8bit(Dicom &dc, const Samples &s, size_t n, uint8_t *out, bmc_image_info *info) {
    const bmc__decode_opts *o = dc.o;
    bool sgn = dc.pixrep == 1;
    /* 1. Modality LUT: the LUT sequence, else rescale slope / intercept */
    std::vector<double> mv(n);
    DcmItem *mitem = NULL;
    std::string modality = "";
    if (dc.ds->findAndGetSequenceItem(DCM_ModalityLUTSequence, mitem, 0).good() && mitem) {
        Lut lut;
        std::string why;
        if (!read_lut(mitem, sgn, &lut, &why)) fail(BMC_E_IMAGE, fmt("%s: Modality LUT Sequence: %s", dc.name, why.c_str()));
        for (size_t i = 0; i < n; i++) mv[i] = lut.at((double)s.get(i));
        modality = "modality LUT, ";
    } else {
        Float64 slope = 1, intercept = 0;
        DcmItem *it = dc.find(DCM_PixelValueTransformationSequence, DCM_RescaleSlope);
        if (it) it->findAndGetFloat64(DCM_RescaleSlope, slope);
        it = dc.find(DCM_PixelValueTransformationSequence, DCM_RescaleIntercept);
        if (it) it->findAndGetFloat64(DCM_RescaleIntercept, intercept);
        if (!std::isfinite(slope) || !std::isfinite(intercept) || slope == 0) slope = 1, intercept = 0;
        for (size_t i = 0; i < n; i++) mv[i] = (double)s.get(i) * slope + intercept;
        if (slope != 1 || intercept != 0) modality = fmt("rescale %g x + %g, ", slope, intercept);
    }

    /* 2. VOI */
    DcmItem *witem = dc.find(DCM_FrameVOILUTSequence, DCM_WindowCenter);
    if (witem && !witem->tagExistsWithValue(DCM_WindowWidth)) witem = NULL;
    unsigned long nwin = 0;
    if (witem) {
        DcmElement *ec = NULL, *ew = NULL;
        witem->findAndGetElement(DCM_WindowCenter, ec);
        witem->findAndGetElement(DCM_WindowWidth, ew);
        unsigned long nc = ec ? ec->getVM() : 0, nw = ew ? ew->getVM() : 0;
        nwin = nc < nw ? nc : nw;
    }
    DcmItem *vitem = NULL;
    if (dc.ds->findAndGetSequenceItem(DCM_VOILUTSequence, vitem, 0).bad()) vitem = NULL;

    int mode = o->window;
    double c = 0, w = 0;
    VoiFunc f = LINEAR;
    std::string rule;
    bool use_lut = false, minmax = false;
    unsigned long k = 0;
    if (mode == BMC_WINDOW_FILE) {
        k = (unsigned long)o->window_index;
        if (k >= nwin)
            fail(BMC_E_IMAGE, fmt("%s: window %lu requested, the file has %lu window%s", dc.name, k, nwin, nwin == 1 ? "" : "s"));
    }
    if (mode == BMC_WINDOW_CENTER_WIDTH) {
        c = o->window_center, w = o->window_width;
        if (w < 1) fail(BMC_E_IMAGE, fmt("%s: window width %g (LINEAR needs width >= 1)", dc.name, w));
        rule = fmt("given window C=%g W=%g LINEAR", c, w);
    } else if (mode == BMC_WINDOW_MINMAX) {
        minmax = true;
    } else if ((mode == BMC_WINDOW_FILE || mode == BMC_WINDOW_AUTO) && nwin > 0) {
        Float64 fc = 0, fw = 0;
        witem->findAndGetFloat64(DCM_WindowCenter, fc, k);
        witem->findAndGetFloat64(DCM_WindowWidth, fw, k);
        OFString func;
        if (witem->findAndGetOFString(DCM_VOILUTFunction, func).good()) {
            if (func == "LINEAR_EXACT") f = LINEAR_EXACT;
            else if (func == "SIGMOID") f = SIGMOID;
            else if (func != "LINEAR" && !func.empty())
                fail(BMC_E_IMAGE, fmt("%s: VOI LUT Function '%s' is not one of LINEAR, LINEAR_EXACT, SIGMOID", dc.name, func.c_str()));
        }
        c = fc, w = fw;
        bool usable = std::isfinite(c) && std::isfinite(w) && (f == LINEAR ? w >= 1 : w > 0);
        if (!usable) {
            if (mode == BMC_WINDOW_FILE)
                fail(BMC_E_IMAGE, fmt("%s: file window %lu has width %g (unusable)", dc.name, k, w));
            /* an unusable window is no window: the rule goes on (VOI LUT, else min-max) */
            use_lut = vitem != NULL;
            minmax = !use_lut;
            rule = fmt("file window %lu unusable (W=%g); ", k, w);
        } else {
            rule = fmt("file window %lu: C=%g W=%g %s", k, c, w, f == LINEAR ? "LINEAR" : f == LINEAR_EXACT ? "LINEAR_EXACT" : "SIGMOID");
        }
    } else if (mode == BMC_WINDOW_AUTO && vitem) {
        use_lut = true;
    } else {
        minmax = true;
    }

    Lut vlut;
    if (use_lut) {
        std::string why;
        if (!read_lut(vitem, sgn && modality.empty(), &vlut, &why))
            fail(BMC_E_IMAGE, fmt("%s: VOI LUT Sequence: %s", dc.name, why.c_str()));
        rule += fmt("VOI LUT 0 (%zu entries from %ld, %d bits)", vlut.data.size(), vlut.first, vlut.bits);
    }
    double lo = 0, hi = 0;
    if (minmax) {
        lo = hi = n ? mv[0] : 0;
        for (size_t i = 1; i < n; i++) lo = mv[i] < lo ? mv[i] : lo, hi = mv[i] > hi ? mv[i] : hi;
        rule += fmt("min-max %g..%g", lo, hi);
    }

    /* 3. inversion: MONOCHROME1, or a Presentation LUT Shape of INVERSE (one inversion: PS3.3
     * asks for INVERSE together with MONOCHROME1 in DX, where both mean the same thing) */
    OFString shape;
    bool inverse = dc.photometric == "MONOCHROME1" ||
                   (dc.ds->findAndGetOFString(DCM_PresentationLUTShape, shape).good() && shape == "INVERSE");

    double lmax = use_lut ? (double)((1u << vlut.bits) - 1) : 1;
    for (size_t i = 0; i < n; i++) {
        double y;
        if (use_lut) y = vlut.at(mv[i]) / lmax;
        else if (minmax) y = hi > lo ? (mv[i] - lo) / (hi - lo) : 0;
        else y = window_y(mv[i], c, w, f);
        uint8_t v = to8(y);
        out[i] = inverse ? (uint8_t)(255 - v) : v;
    }
    std::string all = modality + rule + (inverse ? ", inverted" : "");
    snprintf(info->window, sizeof info->window, "%s", all.c_str());
}

/* ---- the decoder ---------------------------------------------------------------------------- */

bmc_status decode(const uint8_t *data, size_t size, const char *name, const bmc__decode_opts *o, bmc__decoded *out) {
    std::call_once(g_once, setup_dcmtk);
    DcmFileFormat ff;
    {
        MemStream in(data, size);
        ff.transferInit();
        OFCondition cond = ff.read(in, EXS_Unknown, EGL_noChange, READ_NOW);
        ff.transferEnd();
        if (cond.bad())
            fail(BMC_E_IMAGE, fmt("%s: DICOM file could not be parsed (%s: truncated or corrupt)", name, cond.text()));
    }
    Dicom dc;
    dc.name = name;
    dc.o = o;
    dc.ds = ff.getDataset();
    DcmDataset *ds = dc.ds;
    if (!ds) fail(BMC_E_IMAGE, fmt("%s: DICOM file without a dataset", name));

    /* transfer syntax: the meta header's, else the one DCMTK detected */
    E_TransferSyntax xfer = ds->getOriginalXfer();
    OFString ts_uid;
    ff.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, ts_uid);
    DcmXfer dx(xfer);
    if (ts_uid.empty()) ts_uid = dx.getXferID();
    std::string ts_name = DcmXfer(ts_uid.c_str()).getXfer() != EXS_Unknown ? DcmXfer(ts_uid.c_str()).getXferName() : uid_name(ts_uid.c_str());
    dc.ts = std::string(ts_uid.c_str()) + " (" + ts_name + ")";

    /* an object without pixels: say what it is */
    DcmElement *pixel = NULL;
    if (ds->findAndGetElement(DCM_PixelData, pixel).bad() || !pixel) {
        OFString sop;
        if (ds->findAndGetOFString(DCM_SOPClassUID, sop).bad() || sop.empty())
            ff.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, sop);
        const char *why = ds->tagExists(DCM_FloatPixelData) || ds->tagExists(DCM_DoubleFloatPixelData)
                        ? "no Pixel Data (Float / Double Float Pixel Data is not supported)" : "no Pixel Data";
        if (sop.empty()) fail(BMC_E_IMAGE, fmt("%s: %s (no SOP Class UID)", name, why));
        fail(BMC_E_IMAGE, fmt("%s: %s (SOP class %s %s)", name, why, sop.c_str(), uid_name(sop.c_str()).c_str()));
    }

    /* compressed syntaxes this DCMTK cannot decode (JPEG 2000, HTJ2K, MPEG, ...) */
    if (xfer == EXS_Unknown)
        fail(BMC_E_IMAGE, fmt("%s: unknown transfer syntax %s; convert it first (gdcmconv --raw in.dcm out.dcm)", name,
                              dc.ts.c_str()));
    if (dx.isEncapsulated() && !DcmCodecList::canChangeCoding(xfer, EXS_LittleEndianExplicit))
        fail(BMC_E_IMAGE, fmt("%s: transfer syntax %s is not supported (DCMTK decodes RLE, JPEG and JPEG-LS); convert "
                              "it to an uncompressed one first, e.g. gdcmconv --raw in.dcm out.dcm (GDCM), or dcmdjpeg / "
                              "dcmdjpls / dcmdrle for the syntaxes DCMTK decodes", name, dc.ts.c_str()));

    /* the image pixel module */
    struct { DcmTagKey tag; Uint16 *v; const char *what; bool required; } fields[] = {
        {DCM_Rows, &dc.rows, "Rows", true}, {DCM_Columns, &dc.cols, "Columns", true},
        {DCM_BitsAllocated, &dc.alloc, "Bits Allocated", true}, {DCM_BitsStored, &dc.stored, "Bits Stored", false},
        {DCM_HighBit, &dc.high, "High Bit", false}, {DCM_PixelRepresentation, &dc.pixrep, "Pixel Representation", false},
        {DCM_SamplesPerPixel, &dc.spp, "Samples per Pixel", false}, {DCM_PlanarConfiguration, &dc.planar, "Planar Configuration", false},
    };
    for (auto &f : fields)
        if (ds->findAndGetUint16(f.tag, *f.v).bad() && f.required)
            fail(BMC_E_IMAGE, fmt("%s: DICOM image without %s", name, f.what));
    if (!ds->tagExistsWithValue(DCM_BitsStored)) dc.stored = dc.alloc;
    if (!ds->tagExistsWithValue(DCM_HighBit)) dc.high = (Uint16)(dc.stored - 1);
    OFString pi;
    if (ds->findAndGetOFString(DCM_PhotometricInterpretation, pi).bad() || pi.empty())
        fail(BMC_E_IMAGE, fmt("%s: DICOM image without Photometric Interpretation", name));
    dc.photometric = pi.c_str();
    Sint32 nf = 1;
    if (ds->findAndGetSint32(DCM_NumberOfFrames, nf).good() && nf > 1) dc.frames = nf;

    char what[600];
    snprintf(what, sizeof what, "%s: DICOM", name);
    bmc_status st = bmc__check_size(what, dc.cols, dc.rows);
    if (st != BMC_OK) throw Fail{st, bmc_last_error()};
    if (dc.alloc != 8 && dc.alloc != 16 && dc.alloc != 32)
        fail(BMC_E_IMAGE, fmt("%s: Bits Allocated %u is not supported (8, 16, 32 are)", name, (unsigned)dc.alloc));
    if (dc.stored < 1 || dc.stored > dc.alloc || dc.stored > 32 || dc.high < dc.stored - 1 || dc.high >= dc.alloc)
        fail(BMC_E_IMAGE, fmt("%s: Bits Stored %u / High Bit %u do not fit Bits Allocated %u", name, (unsigned)dc.stored,
                              (unsigned)dc.high, (unsigned)dc.alloc));
    bool mono = dc.photometric == "MONOCHROME1" || dc.photometric == "MONOCHROME2";
    bool palette = dc.photometric == "PALETTE COLOR";
    bool colour3 = dc.photometric == "RGB" || dc.photometric == "YBR_FULL" || dc.photometric == "YBR_FULL_422";
    if (!mono && !palette && !colour3)
        fail(BMC_E_IMAGE, fmt("%s: Photometric Interpretation '%s' is not supported (MONOCHROME1, MONOCHROME2, RGB, "
                              "YBR_FULL, YBR_FULL_422, PALETTE COLOR are)", name, dc.photometric.c_str()));
    if ((colour3 && dc.spp != 3) || (!colour3 && dc.spp != 1))
        fail(BMC_E_IMAGE, fmt("%s: %u samples per pixel with Photometric Interpretation %s", name, (unsigned)dc.spp,
                              dc.photometric.c_str()));
    /* frames: a count no pixel data can hold is refused before anything is allocated */
    unsigned long long frame_bytes = (unsigned long long)dc.rows * dc.cols * dc.spp * (dc.alloc / 8);
    if (!dx.isEncapsulated()) {
        /* (YBR_FULL_422 may hold 2 samples a pixel: the check is on the smallest frame) */
        unsigned long long have = pixel->getLength(), least = frame_bytes * 2 / 3;
        if (dc.frames > 1 && (unsigned long long)dc.frames > (have + 1) / least)
            fail(BMC_E_IMAGE, fmt("%s: %ld frames of %u x %u cannot be in %llu bytes of Pixel Data", name, dc.frames,
                                  (unsigned)dc.cols, (unsigned)dc.rows, have));
    } else if ((unsigned long long)dc.frames > size) {
        fail(BMC_E_IMAGE, fmt("%s: Number of Frames %ld is more than a %zu-byte file can hold", name, dc.frames, size));
    }
    if (o->frame >= dc.frames)
        fail(BMC_E_IMAGE, fmt("%s: frame %d requested, the file has %ld frame%s (0..%ld)", name, o->frame, dc.frames,
                              dc.frames == 1 ? "" : "s", dc.frames - 1));

    /* functional groups of Enhanced objects */
    DcmItem *g = NULL;
    if (ds->findAndGetSequenceItem(DCM_PerFrameFunctionalGroupsSequence, g, o->frame).good()) dc.frame_groups = g;
    g = NULL;
    if (ds->findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, g, 0).good()) dc.shared_groups = g;

    /* one frame of stored values, in native byte order; (7FE0,0010) read as a sequence is no
     * pixel data (a corrupt VR) */
    if (!pixel->isLeaf())
        fail(BMC_E_IMAGE, fmt("%s: Pixel Data with VR %s (corrupt)", name, DcmVR(pixel->ident()).getVRName()));
    std::vector<uint8_t> buf;
    OFString colour_model;
    OFCondition cond;
    bool sub422 = false;
    if (!dx.isEncapsulated()) {
        /* read the frame's bytes in the file's order and swap them ourselves: DCMTK swaps OW
         * values 16 bits at a time, which leaves 32-bit big-endian samples half swapped.
         * YBR_FULL_422 is subsampled (2 samples a pixel) when its data is 2/3 the full size
         * (DCMTK's own test: many files saying YBR_FULL_422 are in fact YBR_FULL). */
        unsigned long long have = pixel->getLength();
        sub422 = dc.photometric == "YBR_FULL_422" && have < frame_bytes * (unsigned long long)dc.frames;
        unsigned long long fbytes = sub422 ? frame_bytes * 2 / 3 : frame_bytes;
        if ((unsigned long long)(o->frame + 1) * fbytes > have)
            fail(BMC_E_IMAGE, fmt("%s: Pixel Data of %llu bytes is too short for frame %d of %llu bytes (truncated)",
                                  name, have, o->frame, fbytes));
        buf.resize((size_t)fbytes + 4);
        E_ByteOrder order = dx.getPixelDataByteOrder();
        cond = pixel->getPartialValue(buf.data(), (Uint32)(o->frame * fbytes), (Uint32)fbytes, NULL, order);
        if (cond.bad())
            fail(BMC_E_IMAGE, fmt("%s: frame %d could not be read (%s): truncated or corrupt", name, o->frame, cond.text()));
        int width = dc.alloc / 8;
        if (width > 1 && order != gLocalByteOrder)
            for (size_t i = 0; i + (size_t)width <= (size_t)fbytes; i += (size_t)width)
                std::reverse(buf.begin() + (long)i, buf.begin() + (long)i + width);
        colour_model = dc.photometric.c_str();
    } else {
        /* (7FE0,0010) with a VR DCMTK does not read as pixel data (a sequence, say) is no image */
        if (pixel->ident() != EVR_PixelData)
            fail(BMC_E_IMAGE, fmt("%s: Pixel Data with VR %s is not encapsulated pixel data (corrupt)", name,
                                  DcmVR(pixel->ident()).getVRName()));
        DcmPixelData *pd = OFstatic_cast(DcmPixelData *, pixel);
        if (xfer == EXS_RLELossless) check_rle(pd, xfer, dc.spp * (dc.alloc / 8), name);
        if (xfer >= EXS_JPEGProcess1 && xfer <= EXS_JPEGProcess14SV1) check_jpeg(pd, xfer, name); /* dcmjpeg's */
        Uint32 fsize = 0;
        cond = pd->getUncompressedFrameSize(ds, fsize);
        if (cond.bad()) fail(BMC_E_IMAGE, fmt("%s: cannot size a frame (%s)", name, cond.text()));
        if (fsize < frame_bytes)
            fail(BMC_E_IMAGE, fmt("%s: frame of %u bytes, %llu expected", name, (unsigned)fsize, frame_bytes));
        buf.resize((size_t)fsize + 2);
        Uint32 start = 0;
        cond = pd->getUncompressedFrame(ds, (Uint32)o->frame, start, buf.data(), (Uint32)buf.size() & ~1u, colour_model);
        if (cond.bad() && o->frame > 0) {
            /* without an offset table a frame's first fragment is found by decoding from frame 0 */
            start = 0;
            for (long f = 0; f <= o->frame; f++) {
                cond = pd->getUncompressedFrame(ds, (Uint32)f, start, buf.data(), (Uint32)buf.size() & ~1u, colour_model);
                if (cond.bad()) break;
            }
        }
        if (cond.bad())
            fail(BMC_E_IMAGE, fmt("%s: frame %d could not be decoded (%s; transfer syntax %s): truncated or corrupt", name,
                                  o->frame, cond.text(), dc.ts.c_str()));
    }
    std::string model = colour_model.empty() ? dc.photometric : colour_model.c_str();

    /* the 8-bit image */
    int W = dc.cols, H = dc.rows;
    size_t n = (size_t)W * H;
    Samples s{buf.data(), dc.alloc, dc.high + 1 - dc.stored,
              dc.stored >= 32 ? 0xffffffffu : (1u << dc.stored) - 1, dc.pixrep == 1};
    bmc_image_info info;
    memset(&info, 0, sizeof info);
    if (mono) {
        std::vector<uint8_t> l(n);
        gray_to_8bit(dc, s, n, l.data(), &info);
        if ((st = bmc__decoded_alloc(out, what, W, H, BMC__MODE_L)) != BMC_OK) throw Fail{st, bmc_last_error()};
        memcpy(out->pix, l.data(), n);
    } else if (palette) {
        Lut lut[3];
        const DcmTagKey desc[3] = {DCM_RedPaletteColorLookupTableDescriptor, DCM_GreenPaletteColorLookupTableDescriptor,
                                   DCM_BluePaletteColorLookupTableDescriptor};
        const DcmTagKey tab[3] = {DCM_RedPaletteColorLookupTableData, DCM_GreenPaletteColorLookupTableData,
                                  DCM_BluePaletteColorLookupTableData};
        for (int k = 0; k < 3; k++) {
            Uint16 ne = 0, first = 0, bits = 0;
            const Uint16 *d = NULL;
            unsigned long count = 0;
            if (ds->findAndGetUint16(desc[k], ne, 0).bad() || ds->findAndGetUint16(desc[k], first, 1).bad() ||
                ds->findAndGetUint16(desc[k], bits, 2).bad())
                fail(BMC_E_IMAGE, fmt("%s: PALETTE COLOR without a complete palette descriptor (segmented palettes are not supported)", name));
            if (ds->findAndGetUint16Array(tab[k], d, &count).bad() || !d)
                fail(BMC_E_IMAGE, fmt("%s: PALETTE COLOR without palette data (segmented palettes are not supported)", name));
            size_t entries = ne == 0 ? 65536 : ne;
            if (bits != 8 && bits != 16) fail(BMC_E_IMAGE, fmt("%s: palette of %u bits (8 or 16 expected)", name, (unsigned)bits));
            /* 8-bit entries may come packed two to a 16-bit word (PS3.3 C.7.6.3.1.6) */
            if (count < entries) fail(BMC_E_IMAGE, fmt("%s: palette data holds %lu entries, %zu declared", name, count, entries));
            lut[k].first = lut_first(first, dc.pixrep == 1);
            lut[k].bits = bits;
            lut[k].data.assign(d, d + entries);
        }
        if ((st = bmc__decoded_alloc(out, what, W, H, BMC__MODE_RGB)) != BMC_OK) throw Fail{st, bmc_last_error()};
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 3; k++) {
                double v = lut[k].at((double)s.get(i));
                /* 16-bit entries: v * 255 / 65535 rounded; 8-bit ones as they are */
                out->pix[3 * i + k] = lut[k].bits == 16 ? (uint8_t)std::floor(v * 255 / 65535 + 0.5) : (uint8_t)(v > 255 ? 255 : v);
            }
        snprintf(info.window, sizeof info.window, "palette (%d-bit entries)", lut[0].bits);
    } else {
        /* RGB / YBR: planar configuration 1 keeps each plane whole; YBR_FULL_422 (uncompressed)
         * stores Y1 Y2 Cb Cr for each pair of pixels */
        bool ybr = model == "YBR_FULL" || model == "YBR_FULL_422";
        if (ybr && dc.stored != 8) fail(BMC_E_IMAGE, fmt("%s: %s with %u bits stored (8 supported)", name, model.c_str(), (unsigned)dc.stored));
        if (sub422 && (W & 1)) fail(BMC_E_IMAGE, fmt("%s: YBR_FULL_422 with an odd width %d", name, W));
        if ((st = bmc__decoded_alloc(out, what, W, H, BMC__MODE_RGB)) != BMC_OK) throw Fail{st, bmc_last_error()};
        double maxv = dc.stored >= 32 ? 4294967295.0 : (double)((1ull << dc.stored) - 1);
        for (size_t i = 0; i < n; i++) {
            double v[3];
            for (int k = 0; k < 3; k++) {
                size_t at;
                if (sub422) {
                    size_t pair = i / 2;
                    at = k == 0 ? pair * 4 + (i & 1) : pair * 4 + 1 + (size_t)k;
                } else {
                    at = dc.planar == 1 ? (size_t)k * n + i : 3 * i + (size_t)k;
                }
                v[k] = (double)s.get(at);
            }
            uint8_t *p = out->pix + 3 * i;
            if (ybr) { /* PS3.3 C.7.6.3.1.2, rounded half up as pydicom's convert_color_space */
                double y = v[0], cb = v[1] - 128, cr = v[2] - 128;
                double rgb[3] = {y + 1.402 * cr, y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr, y + 1.772 * cb};
                for (int k = 0; k < 3; k++) {
                    double r = std::floor(rgb[k] + 0.5);
                    p[k] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
                }
            } else if (dc.stored == 8) {
                for (int k = 0; k < 3; k++) p[k] = (uint8_t)v[k];
            } else {
                for (int k = 0; k < 3; k++) p[k] = to8(v[k] / maxv);
            }
        }
        if (dc.stored != 8) snprintf(info.window, sizeof info.window, "scale %u->8 bit (v * 255 / %.0f)", (unsigned)dc.stored, maxv);
        if (ybr) snprintf(info.window, sizeof info.window, "%s -> RGB", model.c_str());
    }
    snprintf(info.format, sizeof info.format, "DICOM");
    snprintf(info.mode, sizeof info.mode, "%s", mono ? "L" : "RGB");
    info.width = W;
    info.height = H;
    info.bits_stored = dc.stored;
    info.n_frames = (int)(dc.frames > INT32_MAX ? INT32_MAX : dc.frames);
    info.frame = o->frame;
    snprintf(info.photometric, sizeof info.photometric, "%s", dc.photometric.c_str());
    snprintf(info.transfer_syntax, sizeof info.transfer_syntax, "%s", dc.ts.c_str());
    out->info = info;
    return BMC_OK;
}

} // namespace

extern "C" bmc_status bmc__decode_dicom(const uint8_t *data, size_t size, const char *name, const bmc__decode_opts *opts,
                                        bmc__decoded *out) {
    static const bmc__decode_opts defaults = {};
    const bmc__decode_opts *o = opts ? opts : &defaults;
    memset(out, 0, sizeof *out);
    try {
        return decode(data, size, name, o, out);
    } catch (const Fail &f) {
        bmc__decoded_free(out);
        return bmc__fail(f.st, "%s", f.msg.c_str());
    } catch (const std::bad_alloc &) {
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory decoding the DICOM file", name);
    } catch (...) {
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_IMAGE, "%s: the DICOM decoder failed (an exception inside DCMTK)", name);
    }
}

extern "C" const char *bmc__dicom_version(void) { return "DCMTK " OFFIS_DCMTK_VERSION_STRING; }
