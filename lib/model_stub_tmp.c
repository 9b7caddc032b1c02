/* temporary: replaced by model.c */
#include "error.h"
#include "model.h"
bmc_status bmc_model_load(const char *path, const bmc_model_params *params, bmc_model **out) {
    (void)params; if (out) *out = NULL;
    return bmc__fail(BMC_E_INTERNAL, "%s: model loading not built yet", path ? path : "(null)");
}
void bmc_model_free(bmc_model *m) { (void)m; }
