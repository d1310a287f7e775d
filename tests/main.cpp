// The one main() of vigil_tests, for Catch2 v2 and v3 (VIGIL_CATCH2_MAJOR comes from CMake).
#if VIGIL_CATCH2_MAJOR >= 3
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

int main(int argc, char* argv[]) {
  return Catch::Session().run(argc, argv);
}
