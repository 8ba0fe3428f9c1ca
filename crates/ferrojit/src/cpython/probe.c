/* The opcode tables CPython 3.11 does not export (_PyOpcode_Caches, _PyOpcode_Deopt), compiled
 * from the target interpreter's own pycore_opcode.h with NEED_OPCODE_TABLES, and copied out. */
#include "Python.h"
#include "internal/pycore_opcode.h"

void ferrojit_opcode_tables(unsigned char *caches, unsigned char *deopt) {
    for (int i = 0; i < 256; i++) {
        caches[i] = _PyOpcode_Caches[i];
        deopt[i] = _PyOpcode_Deopt[i];
    }
}
