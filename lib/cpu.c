/* cpu.c - which kernels run (cpu.h): the CPU and the OS are asked once, at first use.
 *
 * A level needs both the instructions (cpuid) and the OS saving their registers on a context
 * switch (OSXSAVE, then xgetbv: XMM|YMM state for AVX2, also opmask|ZMM_Hi256|Hi16_ZMM for
 * AVX-512); a kernel using registers the OS does not save would fault or corrupt state.
 * BMC_CPU=avx512_bf16|avx512|avx2|portable asks for a level: a lower one than the CPU's best is taken (tests,
 * users who hit a problem), a higher one is refused with a warning through the log callback.
 * The choice is made once and kept, so that every product of a process uses the same kernels
 * and results do not change between calls. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "biomedclip.h"
#include "cpu.h"
#include "error.h"

const bmc__kernels bmc__kernels_avx512_bf16 = {
    BMC__LEVEL_AVX512_BF16, bmc__outer_avx512, bmc__pack_w_avx512,
    {NULL, bmc__outer_f16_avx512, bmc__outer_bf16dp_avx512}, {1, 1, 4}, bmc__layernorm_row_avx512,
    bmc__gelu_avx512, bmc__softmax_scaled_avx512};
const bmc__kernels bmc__kernels_avx512 = {
    BMC__LEVEL_AVX512, bmc__outer_avx512, bmc__pack_w_avx512,
    {NULL, bmc__outer_f16_avx512, bmc__outer_bf16w_avx512}, {1, 1, 1}, bmc__layernorm_row_avx512,
    bmc__gelu_avx512, bmc__softmax_scaled_avx512};
const bmc__kernels bmc__kernels_avx2 = {
    BMC__LEVEL_AVX2, bmc__outer_avx2, bmc__pack_w_avx2,
    {NULL, bmc__outer_f16_avx2, bmc__outer_bf16w_avx2}, {1, 1, 1}, bmc__layernorm_row_avx2,
    bmc__gelu_avx2, bmc__softmax_scaled_avx2};
const bmc__kernels bmc__kernels_portable = {
    BMC__LEVEL_PORTABLE, NULL, NULL, {NULL, NULL, NULL}, {1, 1, 1}, bmc__layernorm_row_portable,
    bmc__gelu_portable, bmc__softmax_scaled_portable};

static const char *const level_names[BMC__N_LEVELS] = {"portable", "avx2", "avx512", "avx512_bf16"};

const char *bmc__level_name(bmc__level level) { return level_names[level]; }

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static bmc__level detect(const char **why) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return *why = "cpuid leaf 1 missing", BMC__LEVEL_PORTABLE;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return *why = "no AVX (or the OS does not enable it)", BMC__LEVEL_PORTABLE;
    unsigned long long xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return *why = "the OS does not save YMM registers", BMC__LEVEL_PORTABLE;
    if (__get_cpuid_max(0, NULL) < 7) return *why = "cpuid leaf 7 missing", BMC__LEVEL_PORTABLE;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned int subleaves = a; /* leaf 7's highest subleaf */
    int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1,
        vl = (b >> 31) & 1;
    if (!avx2 || !fma || !f16c) return *why = "no AVX2 + FMA + F16C", BMC__LEVEL_PORTABLE;
    if (!(f && dq && bw && vl)) return *why = "AVX2 + FMA + F16C, no AVX-512 F/BW/DQ/VL", BMC__LEVEL_AVX2;
    if ((xcr0 & 0xe6) != 0xe6)
        return *why = "AVX-512 present but the OS does not save ZMM registers", BMC__LEVEL_AVX2;
    a = 0;
    if (subleaves >= 1) __cpuid_count(7, 1, a, b, c, d);
    if (!((a >> 5) & 1)) return *why = "AVX-512 F/BW/DQ/VL + FMA, no AVX512_BF16", BMC__LEVEL_AVX512;
    return *why = "AVX-512 F/BW/DQ/VL + FMA + AVX512_BF16", BMC__LEVEL_AVX512_BF16;
}
#else
static bmc__level detect(const char **why) {
    *why = "not x86";
    return BMC__LEVEL_PORTABLE;
}
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bmc__level best, chosen;
static char reason[192];

static void choose(void) {
    const char *why = "";
    best = chosen = detect(&why);
    const char *env = getenv("BMC_CPU");
    if (env && *env) {
        int want = -1;
        for (int i = 0; i < BMC__N_LEVELS; i++)
            if (strcmp(env, level_names[i]) == 0) want = i;
        if (want < 0) {
            bmc__log(BMC_LOG_WARN, "BMC_CPU=%s: not avx512_bf16, avx512, avx2 or portable; ignored", env);
            snprintf(reason, sizeof reason, "the CPU's best: %s; BMC_CPU=%s not understood", why,
                     env);
        } else if (want > (int)best) {
            bmc__log(BMC_LOG_WARN, "BMC_CPU=%s: this CPU has only %s (%s); ignored", env,
                     level_names[best], why);
            snprintf(reason, sizeof reason, "the CPU's best: %s; BMC_CPU=%s refused", why, env);
        } else {
            chosen = (bmc__level)want;
            snprintf(reason, sizeof reason, "forced by BMC_CPU=%s; the CPU has %s: %s", env,
                     level_names[best], why);
        }
    } else {
        snprintf(reason, sizeof reason, "the CPU's best: %s", why);
    }
}

bmc__level bmc__cpu_best(void) {
    pthread_once(&once, choose);
    return best;
}

const char *bmc__cpu_reason(void) {
    pthread_once(&once, choose);
    return reason;
}

const bmc__kernels *bmc__kern(void) {
    pthread_once(&once, choose);
    switch (chosen) {
    case BMC__LEVEL_AVX512_BF16: return &bmc__kernels_avx512_bf16;
    case BMC__LEVEL_AVX512: return &bmc__kernels_avx512;
    case BMC__LEVEL_AVX2: return &bmc__kernels_avx2;
    default: return &bmc__kernels_portable;
    }
}
