// Catch2 v2/v3 shim: tests include "catch.hpp" and get the same macros with either version.
//   VIGIL_CATCH2_MAJOR   2 or 3, defined by tests/CMakeLists.txt
//   VIGIL_CONTAINS(s)    string-contains matcher: REQUIRE_THAT(text, VIGIL_CONTAINS("x"))
//   VIGIL_SKIP(msg)      skip the current test (v3: SKIP; v2, which has no SKIP: WARN + return)
// Both versions: TEST_CASE, SECTION, REQUIRE*, CHECK*, INFO, CAPTURE, GENERATE (+ range/values),
// TEMPLATE_TEST_CASE, Catch::Approx (spelled so), Matchers::Message, REQUIRE_THROWS_WITH,
// [!shouldfail], [.hidden] tags.
// Not thread-safe in either version: assert on the test thread, after joining workers.
#pragma once

#if !defined(VIGIL_CATCH2_MAJOR)
#error "VIGIL_CATCH2_MAJOR is not defined: build the tests through tests/CMakeLists.txt"
#endif

#if VIGIL_CATCH2_MAJOR >= 3

#include <catch2/catch_approx.hpp>
#include <catch2/catch_message.hpp>
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_adapters.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <catch2/matchers/catch_matchers_vector.hpp>

#define VIGIL_CONTAINS ::Catch::Matchers::ContainsSubstring

#if defined(SKIP)
#define VIGIL_SKIP(msg) SKIP(msg)
#else  // Catch2 < 3.3
#define VIGIL_SKIP(msg) \
  do {                  \
    WARN(msg);          \
    return;             \
  } while (false)
#endif

#else  // Catch2 v2

#include <catch2/catch.hpp>

#define VIGIL_CONTAINS ::Catch::Matchers::Contains

// v2 declares Approx as Catch::Detail::Approx (and ::Approx); v3 as Catch::Approx.
namespace Catch {
using Detail::Approx;
}  // namespace Catch

#define VIGIL_SKIP(msg) \
  do {                  \
    WARN(msg);          \
    return;             \
  } while (false)

#endif
