# The Wardline native addon: TUN device and batched UDP for Linux, over Node-API and libuv.
# Built by `npm run build:native` (part of `npm run build`, hence of npm install / npm ci) against the
# Node headers of the machine (~/.npmrc: nodedir=/usr), so nothing is downloaded.
{
  "targets": [
    {
      "target_name": "wardline_native",
      "sources": ["src/addon.c", "src/args.c", "src/errors.c", "src/poll.c", "src/tun.c", "src/udp.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"]
    }
  ]
}
