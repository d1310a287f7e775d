# Fixture step of the consumer tests: a fresh `cmake --install` of the build tree into PREFIX.
#   cmake -DBUILD_DIR=<build> -DPREFIX=<dir> -DCONFIG=<cfg> -DCMAKEDIR=<rel> -DINCLUDEDIR=<rel>
#         -P install.cmake
foreach(var BUILD_DIR PREFIX CMAKEDIR INCLUDEDIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${PREFIX}")
set(config_args "")
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
execute_process(
  COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" ${config_args}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} failed (${rc})")
endif()

foreach(file
    "${INCLUDEDIR}/vigil/vigil.hpp"
    "${INCLUDEDIR}/vigil/version.hpp"
    "${CMAKEDIR}/vigilConfig.cmake"
    "${CMAKEDIR}/vigilConfigVersion.cmake"
    "${CMAKEDIR}/vigilTargets.cmake"
    "${CMAKEDIR}/Findasio.cmake")
  if(NOT EXISTS "${PREFIX}/${file}")
    message(FATAL_ERROR "install.cmake: ${PREFIX}/${file} was not installed")
  endif()
endforeach()
message(STATUS "vigil installed into ${PREFIX}")
