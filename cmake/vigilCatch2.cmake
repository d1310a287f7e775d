# Resolves Catch2 for vigil's tests and makes catch_discover_tests() available (include(Catch)).
#
# Prefers Catch2 v3, accepts v2.13 (Debian 12 ships 2.13.10). Sets VIGIL_CATCH2_MAJOR (2 or 3):
# tests/catch.hpp and tests/main.cpp pick the right headers from it.
# With VIGIL_FETCH_DEPS and no installed Catch2, fetches v3 (untested here: no network).

include_guard(GLOBAL)

set(VIGIL_CATCH2_FETCH_TAG "v3.7.1" CACHE STRING "Catch2 git tag used when VIGIL_FETCH_DEPS fetches Catch2")
mark_as_advanced(VIGIL_CATCH2_FETCH_TAG)

if(NOT TARGET Catch2::Catch2)
  find_package(Catch2 3 QUIET)
  if(NOT Catch2_FOUND)
    if(VIGIL_FETCH_DEPS)
      find_package(Catch2 2.13 QUIET)
    else()
      find_package(Catch2 2.13 REQUIRED)
    endif()
  endif()
  if(Catch2_FOUND)
    set(VIGIL_CATCH2_MAJOR ${Catch2_VERSION_MAJOR})
    # v2's package appends its own directory (Catch.cmake) to CMAKE_MODULE_PATH; v3's too, but
    # be explicit so include(Catch) works with either.
    list(APPEND CMAKE_MODULE_PATH "${Catch2_DIR}")
  else()
    message(STATUS "vigil: Catch2 not found, fetching ${VIGIL_CATCH2_FETCH_TAG} (VIGIL_FETCH_DEPS)")
    include(FetchContent)
    set(_vigil_catch2_system "")
    if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.25)
      set(_vigil_catch2_system SYSTEM)
    endif()
    FetchContent_Declare(Catch2
      GIT_REPOSITORY https://github.com/catchorg/Catch2.git
      GIT_TAG ${VIGIL_CATCH2_FETCH_TAG}
      GIT_SHALLOW TRUE
      ${_vigil_catch2_system})
    FetchContent_MakeAvailable(Catch2)
    # project() variables of a subdirectory do not reach us: the tag says v3.
    set(VIGIL_CATCH2_MAJOR 3)
    # Catch.cmake lives in extras/ (v3) or contrib/ (v2).
    list(APPEND CMAKE_MODULE_PATH "${catch2_SOURCE_DIR}/extras" "${catch2_SOURCE_DIR}/contrib")
    unset(_vigil_catch2_system)
  endif()
elseif(NOT DEFINED VIGIL_CATCH2_MAJOR)
  # A parent project provides Catch2::Catch2: tell us which major (2 or 3) with -DVIGIL_CATCH2_MAJOR.
  if(DEFINED Catch2_VERSION_MAJOR)
    set(VIGIL_CATCH2_MAJOR ${Catch2_VERSION_MAJOR})
  else()
    set(VIGIL_CATCH2_MAJOR 3)
  endif()
endif()

if(NOT VIGIL_CATCH2_MAJOR MATCHES "^[23]$")
  message(FATAL_ERROR "vigil: unsupported Catch2 major version '${VIGIL_CATCH2_MAJOR}' (need 2 or 3)")
endif()

include(Catch)
message(STATUS "vigil: tests use Catch2 v${VIGIL_CATCH2_MAJOR}")
