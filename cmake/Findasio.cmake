# Findasio.cmake: find standalone Asio (https://think-async.com), which ships no CMake or
# pkg-config files, and define the imported target asio::asio.
#
# Result variables:
#   asio_FOUND         TRUE if Asio >= 1.22 (and the requested version, if any) was found
#   asio_VERSION       e.g. "1.22.1", parsed from ASIO_VERSION in <asio/version.hpp>
#   ASIO_INCLUDE_DIRS  the directory that holds asio.hpp
#   ASIO_VERSION_OK    FALSE if the Asio found is older than vigil's floor (1.22)
# Cache variables:
#   ASIO_INCLUDE_DIR   the directory that holds asio.hpp (set it to pick a specific copy)
# Hints: asio_ROOT (CMake variable or environment variable), CMAKE_PREFIX_PATH.
#
# Target asio::asio (INTERFACE IMPORTED GLOBAL): SYSTEM include directory, definitions
# ASIO_STANDALONE and ASIO_NO_DEPRECATED, links Threads::Threads. If a target asio::asio
# already exists (e.g. from vigil's FetchContent fallback or from the parent project), it is
# left alone.
#
# vigil needs Asio >= 1.22 (ASIO_VERSION >= 102200): older versions are reported as not found.

include(FindPackageHandleStandardArgs)

set(_asio_min_version 1.22.0)

set(_asio_include_dir "")
if(TARGET asio::asio)
  # Someone else already provides the target: use it, but still check its version.
  get_target_property(_asio_inc asio::asio INTERFACE_INCLUDE_DIRECTORIES)
  foreach(_asio_dir IN LISTS _asio_inc)
    if(EXISTS "${_asio_dir}/asio/version.hpp")
      set(_asio_include_dir "${_asio_dir}")
      break()
    endif()
  endforeach()
  unset(_asio_inc)
  unset(_asio_dir)
endif()

if(NOT _asio_include_dir)
  find_path(ASIO_INCLUDE_DIR
    NAMES asio.hpp
    PATH_SUFFIXES include
    DOC "Directory that contains the standalone Asio header asio.hpp")
  mark_as_advanced(ASIO_INCLUDE_DIR)
  if(ASIO_INCLUDE_DIR)
    set(_asio_include_dir "${ASIO_INCLUDE_DIR}")
  endif()
endif()
if(_asio_include_dir)
  set(ASIO_INCLUDE_DIRS "${_asio_include_dir}")
else()
  set(ASIO_INCLUDE_DIRS "ASIO_INCLUDE_DIRS-NOTFOUND")
endif()

unset(asio_VERSION)
if(_asio_include_dir AND EXISTS "${_asio_include_dir}/asio/version.hpp")
  file(STRINGS "${_asio_include_dir}/asio/version.hpp" _asio_version_line
       REGEX "^#[ \t]*define[ \t]+ASIO_VERSION[ \t]+[0-9]+")
  if(_asio_version_line MATCHES "ASIO_VERSION[ \t]+([0-9]+)")
    # ASIO_VERSION % 100 is the sub-minor version, / 100 % 1000 the minor, / 100000 the major.
    set(_asio_version_number "${CMAKE_MATCH_1}")
    math(EXPR _asio_major "${_asio_version_number} / 100000")
    math(EXPR _asio_minor "${_asio_version_number} / 100 % 1000")
    math(EXPR _asio_patch "${_asio_version_number} % 100")
    set(asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
    set(asio_VERSION_MAJOR "${_asio_major}")
    set(asio_VERSION_MINOR "${_asio_minor}")
    set(asio_VERSION_PATCH "${_asio_patch}")
  endif()
  unset(_asio_version_line)
endif()

# vigil's own floor, independent of what the caller asked for.
set(_asio_reason "")
set(ASIO_VERSION_OK TRUE)
if(_asio_include_dir AND NOT asio_VERSION)
  set(ASIO_VERSION_OK FALSE)
  set(_asio_reason "could not read ASIO_VERSION from ${_asio_include_dir}/asio/version.hpp")
elseif(asio_VERSION AND asio_VERSION VERSION_LESS _asio_min_version)
  set(ASIO_VERSION_OK FALSE)
  set(_asio_reason "vigil needs standalone Asio >= ${_asio_min_version} (ASIO_VERSION >= 102200), \
found ${asio_VERSION} in ${_asio_include_dir}")
endif()

if(NOT TARGET Threads::Threads)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_package(Threads QUIET)
endif()
if(TARGET Threads::Threads)
  set(_asio_threads_ok TRUE)
else()
  set(_asio_threads_ok FALSE)
endif()

find_package_handle_standard_args(asio
  REQUIRED_VARS ASIO_INCLUDE_DIRS ASIO_VERSION_OK _asio_threads_ok
  VERSION_VAR asio_VERSION
  REASON_FAILURE_MESSAGE "${_asio_reason}")

if(asio_FOUND)
  if(NOT TARGET asio::asio)
    add_library(asio::asio INTERFACE IMPORTED GLOBAL)
    set_target_properties(asio::asio PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${_asio_include_dir}"
      INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_asio_include_dir}"
      INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED"
      INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
endif()

unset(_asio_include_dir)
unset(_asio_min_version)
unset(_asio_reason)
unset(_asio_threads_ok)
unset(_asio_version_number)
unset(_asio_major)
unset(_asio_minor)
unset(_asio_patch)
