#include "common.hpp"

#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bench {

void keep_heap_warm() {
#if defined(__GLIBC__)
  ::mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // glibc's largest
  ::mallopt(M_TRIM_THRESHOLD, INT_MAX);           // (almost) never give the heap's top back
#endif
}

}  // namespace bench
