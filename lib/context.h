/* context.h - a context: the model it runs, its threads and its scratch arena. Only the context
 * (context.c) and the scheduler (run.c), which owns the threads and the arena, look inside. */
#ifndef BMC_CONTEXT_H
#define BMC_CONTEXT_H

#include <stddef.h>

#include "biomedclip.h"
#include "model.h"
#include "pool.h"

struct bmc_ctx {
    const bmc_model *model;
    bmc_ctx_params params;
    bmc__pool *pool;        /* the threads a forward pass runs on (pool.h) */
    float *scratch;         /* one arena shared by both towers (they never run at once) */
    size_t scratch_floats;  /* its capacity */
};

#endif /* BMC_CONTEXT_H */
