/*
 * Module registration of wardline_native: TUN device, batched UDP and fd readiness for
 * daemons/native/index.ts, which is its only caller.
 */
#include <uv.h>

#include "native.h"

static napi_value init(napi_env env, napi_value exports) {
  if (wl_poll_init(env) != 0) {
    napi_throw_error(env, "ERR_WARDLINE_NATIVE", "wardline_native: could not set up the poll table");
    return NULL;
  }
  napi_property_descriptor properties[] = {
      {"tunOpen", NULL, wl_tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunRead", NULL, wl_tun_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunWrite", NULL, wl_tun_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpOpen", NULL, wl_udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpRecv", NULL, wl_udp_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSend", NULL, wl_udp_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"poll", NULL, wl_poll, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, wl_poll_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, wl_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ADDRESS_SIZE", NULL, NULL, NULL, NULL, wl_number(env, WL_ADDRESS_SIZE), napi_enumerable, NULL},
      {"READABLE", NULL, NULL, NULL, NULL, wl_number(env, UV_READABLE), napi_enumerable, NULL},
      {"WRITABLE", NULL, NULL, NULL, NULL, wl_number(env, UV_WRITABLE), napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) {
    wl_throw_napi(env, "napi_define_properties");
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
