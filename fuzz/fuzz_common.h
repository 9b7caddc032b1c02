/* fuzz_common.h - shared by the fuzz targets: finding the test model. */
#ifndef BMC_FUZZ_COMMON_H
#define BMC_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "biomedclip.h"

/* The tiny test model (tests/prep/10_models.sh): $BMC_FUZZ_MODEL, else $BMC_TESTDATA/tiny.bmc,
 * else build/testdata/tiny.bmc. Aborts with a message when none loads: a fuzz target without
 * its model would test nothing. */
static bmc_model *fuzz_load_tiny(void) {
    char buf[4096];
    const char *p = getenv("BMC_FUZZ_MODEL");
    if (!p || !*p) {
        const char *td = getenv("BMC_TESTDATA");
        snprintf(buf, sizeof buf, "%s/tiny.bmc", td && *td ? td : "build/testdata");
        p = buf;
    }
    bmc_model *m = NULL;
    if (bmc_model_load(p, NULL, &m) != BMC_OK) {
        fprintf(stderr, "fuzz: cannot load the tiny model (set BMC_FUZZ_MODEL): %s\n", bmc_last_error());
        abort();
    }
    return m;
}

#endif
