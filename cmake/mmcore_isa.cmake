# Per-file ISA flags: only sources named *_avx2.cpp / *_avxvnni.cpp / *_avx512.cpp / *_amx.cpp get -m
# flags, nothing else. On a target that is not x86-64 (aarch64: Graviton, Grace) those sources are
# left out and the scalar reference runs (backend "ref"); the dispatch sites test MMCORE_HAVE_*.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
  set(MMCORE_X86_64 ON)
else()
  set(MMCORE_X86_64 OFF)
  message(STATUS "mmcore: ${CMAKE_SYSTEM_PROCESSOR} is not x86-64: the scalar kernels only")
endif()
set(MMCORE_AVX2_FLAGS -mavx2 -mfma -mbmi -mbmi2 -mpopcnt -mf16c)
set(MMCORE_AVX512_FLAGS ${MMCORE_AVX2_FLAGS} -mavx512f -mavx512bw -mavx512vl -mavx512dq
    -mavx512vpopcntdq -mavx512vnni)
set(MMCORE_AVXVNNI_FLAGS ${MMCORE_AVX2_FLAGS} -mavxvnni)
set(MMCORE_AMX_FLAGS ${MMCORE_AVX512_FLAGS} -mamx-tile -mamx-int8)

# mmcore_isa_sources(<target> <sources...>): adds the sources, flagging the ISA variants.
# Every other source compiles with contraction off: where the base ISA has FMA (aarch64), the
# compiler would otherwise fuse a * b + c in the scalar kernels and change the float results that
# the hashes and Pillow-exact resize are defined by (on x86-64 the flag changes nothing there).
function(mmcore_isa_sources target)
  set(kept)
  foreach(src IN LISTS ARGN)
    if(NOT MMCORE_X86_64 AND src MATCHES "_(amx|avx512|avxvnni|avx2)\\.cpp$")
      continue()
    endif()
    list(APPEND kept ${src})
    if(src MATCHES "_amx\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${MMCORE_AMX_FLAGS}")
      target_compile_definitions(${target} PUBLIC MMCORE_HAVE_AMX=1)
    elseif(src MATCHES "_avx512\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${MMCORE_AVX512_FLAGS}")
      target_compile_definitions(${target} PUBLIC MMCORE_HAVE_AVX512=1)
    elseif(src MATCHES "_avxvnni\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${MMCORE_AVXVNNI_FLAGS}")
      target_compile_definitions(${target} PUBLIC MMCORE_HAVE_AVXVNNI=1)
    elseif(src MATCHES "_avx2\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${MMCORE_AVX2_FLAGS}")
      target_compile_definitions(${target} PUBLIC MMCORE_HAVE_AVX2=1)
    else()
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
    endif()
  endforeach()
  target_sources(${target} PRIVATE ${kept})
endfunction()
