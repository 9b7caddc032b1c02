/* fuzz_dicom.c - libFuzzer target: the DICOM decoder (lib/image_dicom.cc over DCMTK).
 *
 * Input: byte 0 picks the load parameters (bits 0-1 frame 0..3, bits 2-3 window mode AUTO /
 * FILE / MINMAX / CENTER_WIDTH), byte 1 the file window index (0..3) or, with a given window,
 * the centre (byte 1 * 16 - 1024, width 1 + byte 1 * 8); the rest goes to
 * bmc_image_load_memory_ex as it is (Part 10 or a bare dataset, recognised by content). A
 * failure must leave a message and nothing allocated (LeakSanitizer); an image must have a
 * consistent view (every pixel read: ASan) and info that agrees with it (format DICOM, the
 * frame asked for, frame < n_frames, mode L or RGB). Seeds: fuzz/gen_dicom_seeds.py (made at
 * test time from pydicom's files and DCMTK's tools; nothing is committed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    bmc_load_params p = bmc_load_default_params();
    p.frame = data[0] & 3;
    p.window = (bmc_window_mode)((data[0] >> 2) & 3);
    p.window_index = data[1] & 3;
    p.window_center = data[1] * 16.0 - 1024;
    p.window_width = 1 + data[1] * 8.0;
    bmc_image img;
    memset(&img, 0xA5, sizeof img);
    bmc_status st = bmc_image_load_memory_ex(data + 2, size - 2, &p, &img);
    if (st != BMC_OK) {
        if (!bmc_last_error()[0] || img.pixels || img.internal_) abort();
        return 0;
    }
    fuzz_check_view(&img);
    bmc_image_info info;
    if (bmc_image_get_info(&img, &info) != BMC_OK || info.width != img.width || info.height != img.height) abort();
    if (!strcmp(info.format, "DICOM") &&
        (info.frame != p.frame || info.frame >= info.n_frames || (strcmp(info.mode, "L") && strcmp(info.mode, "RGB"))))
        abort();
    bmc_image_free(&img);
    return 0;
}
