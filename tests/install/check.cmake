# check.cmake - install the library built in BUILD_DIR into a fresh prefix
# and build a program against the installed copy, the two ways a user does:
# with pkg-config (cosync.pc) and with find_package(cosync) (the CMake
# package), and a C++ program that includes the header; then the same
# program with the source tree added to its project
# (add_subdirectory). Each program must print what the in-tree build of the
# same example (REFERENCE) prints. Run by CTest as `cmake -P` (test_install).
#
# With SHARED true the install has libcosync.so too: pkg-config's flags then
# link it (the linker prefers it), find_package links each library in turn,
# and each program's use of the library it was meant to get is checked.
#
# Variables: SOURCE_DIR, BUILD_DIR, WORK_DIR, C_COMPILER, GENERATOR,
# VERSION (the project's), REFERENCE (the in-tree example's binary), SHARED,
# NM,
# PKG_CONFIG and CXX_COMPILER (either empty: that part is skipped, with a
# note).

cmake_minimum_required(VERSION 3.16) # the policies of the project (IN_LIST)

foreach(var SOURCE_DIR BUILD_DIR WORK_DIR C_COMPILER GENERATOR VERSION REFERENCE SHARED NM)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "check.cmake: ${var} is not set")
    endif()
endforeach()

set(app ${SOURCE_DIR}/examples/hello.c)
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# Run a command; stop the test with its output unless it exits 0.
function(run_ok what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}")
    endif()
endfunction()

# Run a built program and compare what it prints with the reference.
function(expect_reference_output what exe)
    execute_process(COMMAND ${exe} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what}: ${exe} exited ${rc}\n${out}${err}")
    endif()
    if(NOT out STREQUAL reference_output)
        message(FATAL_ERROR "${what}: printed\n${out}\nwhere the in-tree build prints\n${reference_output}")
    endif()
    message(STATUS "${what}: prints what the in-tree build prints")
endfunction()

# A program that should use the shared library names it among the
# libraries it needs; a statically linked one does not.
function(expect_linked what exe shared)
    file(STRINGS ${exe} needed REGEX "^libcosync\\.so")
    if(shared AND NOT needed STREQUAL "libcosync.so.${soversion}")
        message(FATAL_ERROR "${what}: needs '${needed}', not libcosync.so.${soversion}")
    elseif(NOT shared AND needed)
        message(FATAL_ERROR "${what}: needs ${needed}, where it should have the static library")
    endif()
endfunction()

execute_process(COMMAND ${REFERENCE} RESULT_VARIABLE rc OUTPUT_VARIABLE reference_output)
if(NOT rc EQUAL 0 OR reference_output STREQUAL "")
    message(FATAL_ERROR "the in-tree ${REFERENCE} exited ${rc} and printed '${reference_output}'")
endif()

run_ok("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# Every public header is installed, unchanged.
file(GLOB_RECURSE headers RELATIVE ${SOURCE_DIR}/include ${SOURCE_DIR}/include/*.h)
foreach(h IN LISTS headers)
    file(GLOB_RECURSE installed ${prefix}/*/${h})
    list(FILTER installed INCLUDE REGEX "/include/${h}$")
    list(LENGTH installed n)
    if(NOT n EQUAL 1)
        message(FATAL_ERROR "header ${h}: ${n} installed copies (${installed})")
    endif()
    file(SHA256 ${SOURCE_DIR}/include/${h} want)
    file(SHA256 ${installed} got)
    if(NOT want STREQUAL got)
        message(FATAL_ERROR "header ${h}: the installed copy differs from the source")
    endif()
endforeach()
list(LENGTH headers n)
message(STATUS "${n} public headers installed")

# The libraries: the static one, and the shared one with its soname.
string(REGEX MATCH "^[0-9]+\\.[0-9]+" soversion ${VERSION})
file(GLOB_RECURSE static_library ${prefix}/*/libcosync.a)
file(GLOB_RECURSE shared_library ${prefix}/*/libcosync.so.${soversion})
if(NOT static_library)
    message(FATAL_ERROR "libcosync.a is not installed")
endif()
get_filename_component(libdir ${static_library} DIRECTORY)
if(SHARED)
    if(NOT shared_library OR NOT EXISTS ${libdir}/libcosync.so)
        message(FATAL_ERROR "libcosync.so and libcosync.so.${soversion} are not both installed in ${libdir}")
    endif()
    set(ENV{LD_LIBRARY_PATH} ${libdir})
    message(STATUS "libcosync.a and libcosync.so.${soversion} installed")
    # The shared library exports what the static one defines of the API, and
    # what the header's inline functions call; nothing else of the library.
    execute_process(COMMAND ${NM} -g --defined-only ${static_library} OUTPUT_VARIABLE static_symbols
                    RESULT_VARIABLE rc1)
    execute_process(COMMAND ${NM} -D --defined-only ${shared_library} OUTPUT_VARIABLE shared_symbols
                    RESULT_VARIABLE rc2)
    if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0)
        message(FATAL_ERROR "${NM} failed on the installed libraries")
    endif()
    string(REGEX MATCHALL "[A-Za-z] cosync_[a-z][a-z0-9_]*" api "${static_symbols}")
    string(REGEX REPLACE "[A-Za-z] " "" api "${api}")
    file(STRINGS ${SOURCE_DIR}/include/cosync.h header_lines REGEX "cosync__")
    file(GLOB_RECURSE more_headers ${SOURCE_DIR}/include/cosync/*.h)
    foreach(h IN LISTS more_headers)
        file(STRINGS ${h} lines REGEX "cosync__")
        list(APPEND header_lines ${lines})
    endforeach()
    string(REGEX MATCHALL "cosync__[a-z0-9_]+" reached "${header_lines}")
    string(REGEX MATCHALL "[A-Za-z] cosync_[a-z0-9_]+" exported "${shared_symbols}")
    string(REGEX REPLACE "[A-Za-z] " "" exported "${exported}")
    foreach(name IN LISTS api)
        if(NOT name IN_LIST exported)
            message(FATAL_ERROR "libcosync.so does not export ${name}")
        endif()
    endforeach()
    foreach(name IN LISTS exported)
        if(name MATCHES "^cosync__" AND NOT name IN_LIST reached)
            message(FATAL_ERROR "libcosync.so exports ${name}, which no header reaches")
        endif()
    endforeach()
    list(LENGTH api n)
    message(STATUS "libcosync.so exports the ${n} API symbols and no internals beyond the header's")
elseif(shared_library OR EXISTS ${libdir}/libcosync.so)
    message(FATAL_ERROR "a shared library is installed by a build without one")
endif()

# pkg-config: the file's prefix and version, then a program built with its flags.
file(GLOB_RECURSE pc_files ${prefix}/*/pkgconfig/cosync.pc)
list(LENGTH pc_files n)
if(NOT n EQUAL 1)
    message(FATAL_ERROR "expected one installed cosync.pc, found ${n}: ${pc_files}")
endif()
if(PKG_CONFIG)
    get_filename_component(pc_dir ${pc_files} DIRECTORY)
    set(ENV{PKG_CONFIG_PATH} ${pc_dir})
    foreach(query "--variable=prefix:${prefix}" "--modversion:${VERSION}")
        string(REPLACE ":" ";" query ${query})
        list(GET query 0 option)
        list(GET query 1 want)
        execute_process(COMMAND ${PKG_CONFIG} ${option} cosync RESULT_VARIABLE rc
                        OUTPUT_VARIABLE got OUTPUT_STRIP_TRAILING_WHITESPACE)
        if(NOT rc EQUAL 0 OR NOT got STREQUAL want)
            message(FATAL_ERROR "pkg-config ${option} cosync: '${got}' (exit ${rc}), expected '${want}'")
        endif()
    endforeach()
    execute_process(COMMAND ${PKG_CONFIG} --cflags --libs cosync RESULT_VARIABLE rc
                    OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "pkg-config --cflags --libs cosync exited ${rc}")
    endif()
    separate_arguments(flags UNIX_COMMAND "${flags}")
    run_ok("compiling with pkg-config's flags" ${C_COMPILER} -std=c11 -Wall -Wextra -Werror ${app}
           ${flags} -o ${WORK_DIR}/app-pkg-config)
    expect_reference_output("pkg-config build" ${WORK_DIR}/app-pkg-config)
    expect_linked("pkg-config build" ${WORK_DIR}/app-pkg-config ${SHARED})
else()
    message(STATUS "pkg-config not found: the pkg-config build is skipped (apt-get install pkg-config)")
endif()

# The header as C++, against the installed library.
if(CXX_COMPILER)
    file(GLOB_RECURSE installed_header ${prefix}/*/cosync.h)
    get_filename_component(include_dir ${installed_header} DIRECTORY)
    run_ok("compiling the header as C++11" ${CXX_COMPILER} -std=c++11 -Wall -Wextra -pedantic -Werror
           ${SOURCE_DIR}/tests/install/cxx_consumer.cpp -I${include_dir} -L${libdir} -lcosync -pthread
           -o ${WORK_DIR}/cxx-consumer)
    execute_process(COMMAND ${WORK_DIR}/cxx-consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT rc EQUAL 0 OR NOT out STREQUAL "cxx: ok\n")
        message(FATAL_ERROR "the C++ program exited ${rc}:\n${out}")
    endif()
    expect_linked("C++ build" ${WORK_DIR}/cxx-consumer ${SHARED})
    message(STATUS "C++ build: every check passed")
else()
    message(STATUS "no C++ compiler found: the C++ build is skipped")
endif()

# find_package(cosync 0.1): a CMake project outside the tree.
set(consumer_args -S ${SOURCE_DIR}/tests/install/consumer -G ${GENERATOR}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_PREFIX_PATH=${prefix} -DAPP_SOURCE=${app})
set(link_targets cosync::cosync)
if(SHARED)
    list(APPEND link_targets cosync::cosync_shared)
endif()
foreach(target IN LISTS link_targets)
    string(REPLACE "cosync::" "" dir ${target})
    run_ok("configuring the find_package project for ${target}" ${CMAKE_COMMAND} ${consumer_args}
           -B ${WORK_DIR}/${dir} -DWANT_VERSION=0.1 -DLINK_TARGET=${target})
    run_ok("building the find_package project for ${target}" ${CMAKE_COMMAND} --build ${WORK_DIR}/${dir})
    expect_reference_output("find_package build with ${target}" ${WORK_DIR}/${dir}/consumer)
    string(COMPARE EQUAL ${target} cosync::cosync_shared shared)
    expect_linked("find_package build with ${target}" ${WORK_DIR}/${dir}/consumer ${shared})
endforeach()

# The version file refuses a version this one is not compatible with.
execute_process(COMMAND ${CMAKE_COMMAND} ${consumer_args} -B ${WORK_DIR}/consumer-too-new
                -DWANT_VERSION=1.0 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
    message(FATAL_ERROR "find_package(cosync 1.0) accepted version ${VERSION}")
endif()
message(STATUS "find_package(cosync 1.0) refused version ${VERSION}")

# add_subdirectory: the source tree as a subproject of the same program.
run_ok("configuring the subproject" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/consumer
       -B ${WORK_DIR}/subproject -G ${GENERATOR} -DCMAKE_C_COMPILER=${C_COMPILER}
       -DCOSYNC_SOURCE=${SOURCE_DIR} -DAPP_SOURCE=${app})
run_ok("building the subproject" ${CMAKE_COMMAND} --build ${WORK_DIR}/subproject)
expect_reference_output("add_subdirectory build" ${WORK_DIR}/subproject/consumer)

file(REMOVE_RECURSE ${WORK_DIR})
