# bigmaac.node: the reader of stats segments for the agent. Built by
# scripts/build-addon.mjs (node-gyp with --nodedir, never a header download).
{
  "targets": [
    {
      "target_name": "bigmaac",
      "sources": [
        "addon.cc",
        "status.cc",
        "snapshot.cc",
        "pageout_worker.cc",
        "residency_worker.cc",
        "../src/reader.c"
      ],
      "include_dirs": [
        "../include",
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
