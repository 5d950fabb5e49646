# Per-file ISA flags: only sources named *_avx2.cpp / *_avxvnni.cpp / *_avx512.cpp / *_amx.cpp get -m
# flags, nothing else.
set(MMCORE_AVX2_FLAGS -mavx2 -mfma -mbmi -mbmi2 -mpopcnt -mf16c)
set(MMCORE_AVX512_FLAGS ${MMCORE_AVX2_FLAGS} -mavx512f -mavx512bw -mavx512vl -mavx512dq
    -mavx512vpopcntdq -mavx512vnni)
set(MMCORE_AVXVNNI_FLAGS ${MMCORE_AVX2_FLAGS} -mavxvnni)
set(MMCORE_AMX_FLAGS ${MMCORE_AVX512_FLAGS} -mamx-tile -mamx-int8)

# mmcore_isa_sources(<target> <sources...>): adds the sources, flagging the ISA variants.
function(mmcore_isa_sources target)
  foreach(src IN LISTS ARGN)
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
    endif()
  endforeach()
  target_sources(${target} PRIVATE ${ARGN})
endfunction()
