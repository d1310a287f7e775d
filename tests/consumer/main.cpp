// A user of vigil: compiled by tests/consumer/{fetchcontent,installed} against vigil::vigil.
#include <vigil/vigil.hpp>

#include <cstdio>

// Usage requirements must reach users (Clang 14 + libstdc++ needs them for co_await).
#if !defined(ASIO_HAS_CO_AWAIT) || !defined(ASIO_STANDALONE)
#error "vigil::vigil did not propagate ASIO_HAS_CO_AWAIT / ASIO_STANDALONE"
#endif

int main() {
  std::printf("vigil %.*s\n", static_cast<int>(vigil::version.size()), vigil::version.data());
  return vigil::version.empty() ? 1 : 0;
}
