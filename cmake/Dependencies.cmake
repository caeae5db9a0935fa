# Finds every external dependency and exposes each as one imported target (gpujob::NAME where
# the upstream package has no usable target of its own).

find_package(PkgConfig REQUIRED)

# --- libtorch: Debian's libtorch-dev 1.13 (CPU) or any libtorch >= 1.13 via CMAKE_PREFIX_PATH.
find_package(Torch REQUIRED)
if(Torch_VERSION AND Torch_VERSION VERSION_LESS 1.13)
  message(FATAL_ERROR "gpujob needs libtorch >= 1.13, found ${Torch_VERSION} at ${Torch_DIR}")
endif()
add_library(gpujob::torch INTERFACE IMPORTED)
target_link_libraries(gpujob::torch INTERFACE ${TORCH_LIBRARIES})
# TORCH_CXX_FLAGS carries the C++ ABI define libtorch was built with.
separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(gpujob::torch INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${_torch_flags}>)
if(TORCH_INCLUDE_DIRS)
  target_include_directories(gpujob::torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
endif()
# The PyTorch wheels' libtorch.so exports copies of some libstdc++ functions it was built with
# (std::filesystem::status, create_directories, remove_all, ...). When libtorch.so is the first
# shared library to define them, the linker binds the program's own calls to those copies, and
# remove_all then crashes calling into the system libstdc++ (seen with a toolchain that links
# libstdc++ statically, so no libstdc++.so was on the link line at all). Executables therefore
# name the shared libstdc++ first, so the program's calls bind to it.
add_link_options("$<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:LINKER:--push-state,--no-as-needed,-l:libstdc++.so.6,--pop-state>")

# --- CUDA and NCCL, only with a CUDA build of libtorch.
set(GPUJOB_WITH_CUDA OFF)
set(GPUJOB_NCCL_TARGET "")
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(GPUJOB_WITH_CUDA ON)
  file(GLOB_RECURSE _gpujob_cu_sources ${PROJECT_SOURCE_DIR}/src/*.cu)
  if(_gpujob_cu_sources)  # kernels of our own need the CUDA compiler; libtorch alone does not
    # A100, A10/RTX 30, L4/RTX 40, H100/H200; set CMAKE_CUDA_ARCHITECTURES for others (or "native").
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 86 89 90)
    endif()
    set(CMAKE_CUDA_STANDARD 17)
    enable_language(CUDA)
  endif()
  find_package(CUDAToolkit REQUIRED)
  set(_nccl_hints $ENV{NCCL_HOME} ${NCCL_HOME} ${CUDAToolkit_LIBRARY_ROOT})
  if(Python3_EXECUTABLE OR NOT DEFINED Python3_EXECUTABLE)
    find_program(_py python3)
    if(_py)
      execute_process(COMMAND ${_py} -c "import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])"
                      OUTPUT_VARIABLE _py_nccl OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      list(APPEND _nccl_hints ${_py_nccl})
    endif()
  endif()
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_hints} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${_nccl_hints} PATH_SUFFIXES lib lib64)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "CUDA libtorch found but NCCL was not: set NCCL_HOME to a folder with include/nccl.h and lib/libnccl.so")
  endif()
  add_library(gpujob::nccl INTERFACE IMPORTED)
  target_include_directories(gpujob::nccl INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(gpujob::nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
  target_compile_definitions(gpujob::nccl INTERFACE GPUJOB_WITH_CUDA=1)
  target_compile_definitions(gpujob::torch INTERFACE GPUJOB_WITH_CUDA=1)
  set(GPUJOB_NCCL_TARGET gpujob::nccl)
  message(STATUS "gpujob: CUDA build, NCCL ${NCCL_LIBRARY}")
else()
  message(STATUS "gpujob: CPU build (libtorch without CUDA)")
endif()

# --- MPI (the C API only).
find_package(MPI REQUIRED COMPONENTS C)
# The C API only: otherwise mpi.h pulls in Open MPI's C++ bindings, whose inline members then need
# libmpi_cxx when an executable links.
set_property(TARGET MPI::MPI_C APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)

# --- Parallel HDF5. The location may be given as HDF5_PARALLEL_INCLUDE_DIR/HDF5_PARALLEL_LIBRARY
# (cache variables or environment); otherwise Debian's libhdf5-openmpi-dev is looked up.
foreach(v HDF5_PARALLEL_INCLUDE_DIR HDF5_PARALLEL_LIBRARY)
  if(NOT ${v} AND DEFINED ENV{${v}})
    set(${v} $ENV{${v}})
  endif()
endforeach()
if(NOT HDF5_PARALLEL_INCLUDE_DIR OR NOT HDF5_PARALLEL_LIBRARY)
  pkg_check_modules(_H5 QUIET hdf5-openmpi)
  find_path(HDF5_PARALLEL_INCLUDE_DIR H5pubconf.h
            HINTS ${_H5_INCLUDE_DIRS} /usr/include/hdf5/openmpi /usr/lib/x86_64-linux-gnu/hdf5/openmpi/include)
  find_library(HDF5_PARALLEL_LIBRARY NAMES hdf5_openmpi hdf5
               HINTS ${_H5_LIBRARY_DIRS} /usr/lib/x86_64-linux-gnu/hdf5/openmpi)
endif()
if(NOT HDF5_PARALLEL_INCLUDE_DIR OR NOT HDF5_PARALLEL_LIBRARY)
  message(FATAL_ERROR "parallel HDF5 not found: install libhdf5-openmpi-dev, or pass "
                      "-DHDF5_PARALLEL_INCLUDE_DIR=... -DHDF5_PARALLEL_LIBRARY=...")
endif()
file(STRINGS ${HDF5_PARALLEL_INCLUDE_DIR}/H5pubconf.h _h5_parallel REGEX "^#define H5_HAVE_PARALLEL 1")
if(NOT _h5_parallel)
  message(FATAL_ERROR "HDF5 at ${HDF5_PARALLEL_INCLUDE_DIR} is a serial build (H5_HAVE_PARALLEL is not set); "
                      "gpujob writes one file from many ranks and needs parallel HDF5 "
                      "(Debian: libhdf5-openmpi-dev; or pass -DHDF5_PARALLEL_INCLUDE_DIR/-DHDF5_PARALLEL_LIBRARY)")
endif()
add_library(gpujob::hdf5 INTERFACE IMPORTED)
target_include_directories(gpujob::hdf5 SYSTEM INTERFACE ${HDF5_PARALLEL_INCLUDE_DIR})
target_link_libraries(gpujob::hdf5 INTERFACE ${HDF5_PARALLEL_LIBRARY} MPI::MPI_C)
message(STATUS "gpujob: parallel HDF5 ${HDF5_PARALLEL_LIBRARY}")

# --- Small libraries.
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
add_library(gpujob::pcre2 ALIAS PkgConfig::PCRE2)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
add_library(gpujob::sentencepiece ALIAS PkgConfig::SENTENCEPIECE)
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)  # NFC normalization for tokenizers
add_library(gpujob::icu ALIAS PkgConfig::ICU)
if(GPUJOB_BUILD_TESTS)
  find_package(Catch2 REQUIRED)
endif()
