{
  "targets": [
    {
      "target_name": "segkit_native",
      "sources": [
        "native/addon.cc",
        "native/gemm.cc",
        "native/conv.cc",
        "native/winograd.cc",
        "native/pool_resize.cc",
        "native/elementwise.cc",
        "native/thread_pool.cc",
        "native/workspace.cc"
      ],
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-ffp-contract=off", "-fno-math-errno"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_OPTIMIZATION_LEVEL": "3",
            "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off", "-fno-math-errno"]
          }
        }],
        ["OS=='win'", {
          "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "Optimization": 2 } }
        }]
      ]
    }
  ]
}
