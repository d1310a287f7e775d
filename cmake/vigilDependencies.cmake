# Resolves vigil's library dependencies: Threads, standalone Asio (asio::asio) and fmt (fmt::fmt).
#
# Normal mode (VIGIL_FETCH_DEPS=OFF, the default): find_package only, as packaged by Debian
# (libasio-dev, libfmt-dev). A target that already exists (asio::asio, fmt::fmt), e.g. from a
# parent project, is used as is.
#
# Fallback mode (VIGIL_FETCH_DEPS=ON): find_package first (QUIET); whatever is missing is fetched
# with FetchContent under the same target names.
# NOTE: the fetch paths need network access to github.com and could NOT be exercised on the
# machine this was written on (it reaches Debian's and npm's registries only). They follow the
# documented FetchContent usage of each project; report breakage with the CMake output.

include_guard(GLOBAL)

set(VIGIL_ASIO_FETCH_TAG "asio-1-28-0" CACHE STRING "Asio git tag used when VIGIL_FETCH_DEPS fetches Asio")
set(VIGIL_FMT_FETCH_TAG "10.2.1" CACHE STRING "fmt git tag used when VIGIL_FETCH_DEPS fetches fmt")
mark_as_advanced(VIGIL_ASIO_FETCH_TAG VIGIL_FMT_FETCH_TAG)

# Was a dependency fetched (and so must be installed along with vigil)?
set(VIGIL_FETCHED_ASIO FALSE)
set(VIGIL_FETCHED_FMT FALSE)

if(VIGIL_FETCH_DEPS)
  include(FetchContent)
  # SYSTEM (CMake >= 3.25) keeps the dependencies' warnings out of our -Werror builds.
  set(_vigil_fetch_system "")
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.25)
    set(_vigil_fetch_system SYSTEM)
  endif()
endif()

# --- Threads --------------------------------------------------------------------------------
if(NOT TARGET Threads::Threads)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_package(Threads REQUIRED)
endif()

# --- Asio -----------------------------------------------------------------------------------
# cmake/Findasio.cmake is found through CMAKE_MODULE_PATH (appended by the top-level list file).
if(NOT TARGET asio::asio)
  if(VIGIL_FETCH_DEPS)
    find_package(asio 1.22 QUIET)
    if(NOT asio_FOUND)
      message(STATUS "vigil: Asio not found, fetching ${VIGIL_ASIO_FETCH_TAG} (VIGIL_FETCH_DEPS)")
      FetchContent_Declare(asio
        GIT_REPOSITORY https://github.com/chriskohlhoff/asio.git
        GIT_TAG ${VIGIL_ASIO_FETCH_TAG}
        GIT_SHALLOW TRUE
        # Asio has no CMakeLists.txt: point SOURCE_SUBDIR at nothing so that
        # FetchContent_MakeAvailable only downloads it.
        SOURCE_SUBDIR _vigil_no_cmake_here)
      FetchContent_MakeAvailable(asio)
      set(_vigil_asio_include "${asio_SOURCE_DIR}/asio/include")
      if(NOT EXISTS "${_vigil_asio_include}/asio.hpp")
        message(FATAL_ERROR "vigil: fetched Asio has no ${_vigil_asio_include}/asio.hpp")
      endif()
      # Same target as cmake/Findasio.cmake makes.
      add_library(asio::asio INTERFACE IMPORTED GLOBAL)
      set_target_properties(asio::asio PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${_vigil_asio_include}"
        INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_vigil_asio_include}"
        INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED"
        INTERFACE_LINK_LIBRARIES Threads::Threads)
      set(VIGIL_FETCHED_ASIO TRUE)
      set(VIGIL_FETCHED_ASIO_INCLUDE_DIR "${_vigil_asio_include}")
    endif()
  else()
    find_package(asio 1.22 REQUIRED)
  endif()
endif()

# --- fmt ------------------------------------------------------------------------------------
if(NOT TARGET fmt::fmt)
  if(VIGIL_FETCH_DEPS)
    find_package(fmt 9 CONFIG QUIET)
    if(NOT fmt_FOUND)
      message(STATUS "vigil: fmt not found, fetching ${VIGIL_FMT_FETCH_TAG} (VIGIL_FETCH_DEPS)")
      FetchContent_Declare(fmt
        GIT_REPOSITORY https://github.com/fmtlib/fmt.git
        GIT_TAG ${VIGIL_FMT_FETCH_TAG}
        GIT_SHALLOW TRUE
        ${_vigil_fetch_system})
      # vigil's installed package refers to fmt::fmt, so fmt must install its own package too.
      set(FMT_INSTALL ${VIGIL_INSTALL})
      FetchContent_MakeAvailable(fmt)
      set(VIGIL_FETCHED_FMT TRUE)
    endif()
  else()
    find_package(fmt 9 CONFIG REQUIRED)
  endif()
endif()

unset(_vigil_asio_include)
