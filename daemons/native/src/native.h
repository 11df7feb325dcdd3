/*
 * Shared declarations of the Wardline native addon: argument checks, errors, and the entry points
 * each source file registers. Linux only (TUN, recvmmsg/sendmmsg).
 */
#ifndef WARDLINE_NATIVE_H
#define WARDLINE_NATIVE_H

#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

/* Messages handed to one recvmmsg/sendmmsg call; longer batches are done in chunks of this many. */
#define WL_CHUNK 64

/* Bytes per endpoint in the address arrays of udpRecv/udpSend (layout in udp.c). */
#define WL_ADDRESS_SIZE 20

/* Largest argument count any entry point takes. */
#define WL_MAX_ARGS 8

/* Returns NULL from the calling napi_callback when a Node-API call fails (an exception is pending). */
#define WL_CHECK(env, call)                                                                     \
  do {                                                                                         \
    if ((call) != napi_ok) {                                                                   \
      wl_throw_napi((env), #call);                                                             \
      return NULL;                                                                             \
    }                                                                                          \
  } while (0)

/* errors.c */
napi_value wl_throw_errno(napi_env env, const char* op, int err);
napi_value wl_throw_type(napi_env env, const char* op, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
napi_value wl_throw_range(napi_env env, const char* op, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
napi_value wl_throw_napi(napi_env env, const char* what);

/* args.c: each returns 0 and fills its outputs, or throws and returns -1. */
typedef struct {
  void* data;
  size_t length; /* elements */
} wl_array;

/* Fills argv[0..total) (missing optional arguments are undefined); throws if fewer than want. */
int wl_args(napi_env env, napi_callback_info info, const char* op, size_t want, size_t total,
            napi_value* argv);
int wl_int(napi_env env, napi_value v, const char* op, const char* name, int64_t min, int64_t max,
           int64_t* out);
int wl_string(napi_env env, napi_value v, const char* op, const char* name, char* buf, size_t size);
int wl_u8(napi_env env, napi_value v, const char* op, const char* name, wl_array* out);
int wl_u32(napi_env env, napi_value v, const char* op, const char* name, wl_array* out);
int wl_i32_optional(napi_env env, napi_value v, const char* op, const char* name, wl_array* out);
int wl_fd(napi_env env, napi_value v, const char* op, int* out);
/* Checks that count fits each array (NULL entries are skipped) and that every region
 * [offsets[i], offsets[i] + sizes[i]) for i < count lies inside memory. */
int wl_regions(napi_env env, const char* op, const wl_array* memory, const wl_array* offsets,
               const wl_array* sizes, const char* sizes_name, size_t count);
int wl_count(napi_env env, const char* op, size_t count, const char* name, size_t length);

napi_value wl_number(napi_env env, double value);

/* The entry points. */
napi_value wl_tun_open(napi_env env, napi_callback_info info);
napi_value wl_tun_read(napi_env env, napi_callback_info info);
napi_value wl_tun_write(napi_env env, napi_callback_info info);
napi_value wl_udp_open(napi_env env, napi_callback_info info);
napi_value wl_udp_recv(napi_env env, napi_callback_info info);
napi_value wl_udp_send(napi_env env, napi_callback_info info);
napi_value wl_poll(napi_env env, napi_callback_info info);
napi_value wl_poll_stop(napi_env env, napi_callback_info info);
napi_value wl_close(napi_env env, napi_callback_info info);

/* poll.c: the per-environment table of polled fds. */
int wl_poll_init(napi_env env);
/* Stops and releases the poll of fd, if there is one. */
void wl_poll_forget(napi_env env, int fd);

/* Per-packet results: the errno that dropped a packet, or 0. */
int wl_is_fatal(int err);

#endif
