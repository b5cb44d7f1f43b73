# cmake -DSRC=... -DBIN=... -DAPP_SOURCE=... [-DPREFIX=...] [-DFAILOVER_SOURCE_DIR=...]
#       -P build_consumer.cmake
# Configures and builds one consumer project, failing loudly on any error.
set(args -DCMAKE_BUILD_TYPE=Release "-DAPP_SOURCE=${APP_SOURCE}")
if(PREFIX)
  list(APPEND args "-DCMAKE_PREFIX_PATH=${PREFIX}")
endif()
if(FAILOVER_SOURCE_DIR)
  list(APPEND args "-DFAILOVER_SOURCE_DIR=${FAILOVER_SOURCE_DIR}")
endif()
file(REMOVE_RECURSE "${BIN}")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SRC}" -B "${BIN}" ${args}
                RESULT_VARIABLE configured)
if(NOT configured EQUAL 0)
  message(FATAL_ERROR "configuring ${SRC} failed")
endif()
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BIN}" --parallel ${cores}
                RESULT_VARIABLE built)
if(NOT built EQUAL 0)
  message(FATAL_ERROR "building ${SRC} failed")
endif()
