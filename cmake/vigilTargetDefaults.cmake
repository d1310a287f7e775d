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
  endif()
  if(arg_WERROR OR VIGIL_WERROR)
    list(APPEND flags ${werror})
  endif()
  target_compile_options(${target} PRIVATE ${flags})
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
endfunction()
