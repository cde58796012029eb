{
  "targets": [
    {
      "target_name": "segkit_mpi",
      "sources": ["native/mpi_addon.cc"],
      "defines": ["OMPI_SKIP_MPICXX", "MPICH_SKIP_MPICXX"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "<!@(node scripts/mpi-flags.js compile)"],
      "ldflags": ["<!@(node scripts/mpi-flags.js link)"],
      "libraries": ["<!@(node scripts/mpi-flags.js libraries)"]
    }
  ]
}
