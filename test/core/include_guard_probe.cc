// Compiled by ctest, not linked. With -DPG_FIRST it includes postgres.h before a core
// header and must fail to compile; without it (the control, proving that the include
// paths work) postgres.h comes after the core header and the file compiles.
#ifdef PG_FIRST
#include "postgres.h"
#include "common.h"
#else
#include "common.h"
#include "postgres.h"
#endif
int main() { return 0; }
