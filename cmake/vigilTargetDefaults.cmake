# vigil_target_defaults(<target> [WERROR])
#   Settings for vigil's own targets (library, tests, examples, benchmarks), all PRIVATE: they
#   never reach users of vigil::vigil.
#   - warnings: -Wall -Wextra -Wpedantic (GCC/Clang) or /W4 /permissive- (MSVC);
#   - -Werror (/WX) when VIGIL_WERROR is ON, or always with the WERROR keyword (header check);
#   - ISO C++ (-std=c++20, not gnu++20): CXX_EXTENSIONS OFF.

include_guard(GLOBAL)

function(vigil_target_defaults target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "WERROR" "" "")
  if(MSVC)
    set(flags /W4 /permissive-)
    set(werror /WX)
  else()
    set(flags -Wall -Wextra -Wpedantic)
    set(werror -Werror)
    # GCC 12 at -O2 inlines Asio's thread-local recycling of coroutine frames and reports a
    # free()/delete of memory it believes came from another allocation function
    # (-Wmismatched-new-delete). Both sides are Asio's aligned_new/aligned_delete pair, and
    # ASan, which checks the real calls, reports nothing: a false positive inside Asio.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      list(APPEND flags -Wno-mismatched-new-delete)
    endif()
  endif()
  if(arg_WERROR OR VIGIL_WERROR)
    list(APPEND flags ${werror})
  endif()
  target_compile_options(${target} PRIVATE ${flags})
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
endfunction()
