/* ops_portable.c - the element-wise loops (ops_loops.h) compiled with the build's own flags, for
 * the portable level (cpu.c); a file of its own so that cpu.c's kernel table does not depend on
 * ops.c, which depends on cpu.c. */
#define BMC__SFX(name) name##_portable
#include "ops_loops.h"
