/*
 * JavaScript errors from C: system errors carry the errno name as `code` and in the message
 * ("EPERM: tunOpen: Operation not permitted"), like Node's own; argument errors are TypeError or
 * RangeError with Node's ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE codes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "native.h"

napi_value wl_number(napi_env env, double value) {
  napi_value out = NULL;
  napi_create_double(env, value, &out);
  return out;
}

/* Sets a property if the value could be made; errors here leave the error itself intact. */
static void set_string(napi_env env, napi_value obj, const char* key, const char* value) {
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok) {
    napi_set_named_property(env, obj, key, v);
  }
}

napi_value wl_throw_errno(napi_env env, const char* op, int err) {
  /* libuv's error names are the errno names on Unix (UV_EPERM == -EPERM). */
  const char* name = uv_err_name(-err);
  char message[256];
  snprintf(message, sizeof message, "%s: %s: %s", name, op, strerror(err));
  napi_value code, msg, error;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, code, msg, &error) != napi_ok) {
    napi_throw_error(env, NULL, message);
    return NULL;
  }
  napi_value errno_value;
  if (napi_create_int32(env, -err, &errno_value) == napi_ok) {
    napi_set_named_property(env, error, "errno", errno_value);
  }
  set_string(env, error, "syscall", op);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_formatted(napi_env env, int range, const char* op, const char* fmt, va_list ap) {
  char detail[192];
  char message[256];
  vsnprintf(detail, sizeof detail, fmt, ap);
  snprintf(message, sizeof message, "%s: %s", op, detail);
  if (range) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  }
  return NULL;
}

napi_value wl_throw_type(napi_env env, const char* op, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_formatted(env, 0, op, fmt, ap);
  va_end(ap);
  return NULL;
}

napi_value wl_throw_range(napi_env env, const char* op, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_formatted(env, 1, op, fmt, ap);
  va_end(ap);
  return NULL;
}

napi_value wl_throw_napi(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return NULL;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  char message[256];
  snprintf(message, sizeof message, "wardline_native: %s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown Node-API error");
  napi_throw_error(env, "ERR_WARDLINE_NATIVE", message);
  return NULL;
}

/* Errors that mean the descriptor or the call itself is wrong, not one packet: they throw. */
int wl_is_fatal(int err) {
  return err == EBADF || err == ENOTSOCK || err == EFAULT || err == ENOMEM || err == EOPNOTSUPP;
}
