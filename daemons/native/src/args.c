/*
 * Argument checks for every entry point. The addon writes into memory the caller names by offset,
 * so nothing is trusted: each typed array must have the exact type, each count must fit every array
 * it indexes, and each [offset, offset + size) must lie inside the memory before any syscall runs.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "native.h"

int wl_args(napi_env env, napi_callback_info info, const char* op, size_t want, size_t total,
            napi_value* argv) {
  size_t argc = WL_MAX_ARGS;
  napi_value all[WL_MAX_ARGS];
  if (napi_get_cb_info(env, info, &argc, all, NULL, NULL) != napi_ok) {
    wl_throw_napi(env, "napi_get_cb_info");
    return -1;
  }
  if (argc < want) {
    wl_throw_type(env, op, "expects %zu arguments, got %zu", want, argc);
    return -1;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  for (size_t i = 0; i < total; i++) argv[i] = i < argc ? all[i] : undefined;
  return 0;
}

int wl_int(napi_env env, napi_value v, const char* op, const char* name, int64_t min, int64_t max,
           int64_t* out) {
  napi_valuetype type;
  double d;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, v, &d) != napi_ok) {
    wl_throw_type(env, op, "%s must be a number", name);
    return -1;
  }
  if (!isfinite(d) || d != trunc(d)) {
    wl_throw_range(env, op, "%s must be an integer, got %g", name, d);
    return -1;
  }
  if (d < (double)min || d > (double)max) {
    wl_throw_range(env, op, "%s must be in [%lld, %lld], got %.0f", name, (long long)min, (long long)max, d);
    return -1;
  }
  *out = (int64_t)d;
  return 0;
}

int wl_fd(napi_env env, napi_value v, const char* op, int* out) {
  int64_t fd;
  if (wl_int(env, v, op, "fd", 0, INT_MAX, &fd) != 0) return -1;
  *out = (int)fd;
  return 0;
}

int wl_string(napi_env env, napi_value v, const char* op, const char* name, char* buf, size_t size) {
  napi_valuetype type;
  size_t length = 0;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_string) {
    wl_throw_type(env, op, "%s must be a string", name);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, NULL, 0, &length) != napi_ok) {
    wl_throw_napi(env, "napi_get_value_string_utf8");
    return -1;
  }
  if (length >= size) {
    wl_throw_range(env, op, "%s is too long (%zu bytes, at most %zu)", name, length, size - 1);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, buf, size, &length) != napi_ok) {
    wl_throw_napi(env, "napi_get_value_string_utf8");
    return -1;
  }
  if (strlen(buf) != length) {
    wl_throw_type(env, op, "%s must not contain NUL characters", name);
    return -1;
  }
  return 0;
}

static int typed(napi_env env, napi_value v, const char* op, const char* name, napi_typedarray_type want,
                 const char* want_name, wl_array* out) {
  bool is = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &out->length, &out->data, NULL, NULL) != napi_ok ||
      type != want) {
    wl_throw_type(env, op, "%s must be a %s", name, want_name);
    return -1;
  }
  if (out->data == NULL) out->length = 0; /* a detached buffer (e.g. wasm memory that grew) */
  return 0;
}

int wl_u8(napi_env env, napi_value v, const char* op, const char* name, wl_array* out) {
  return typed(env, v, op, name, napi_uint8_array, "Uint8Array", out);
}

int wl_u32(napi_env env, napi_value v, const char* op, const char* name, wl_array* out) {
  return typed(env, v, op, name, napi_uint32_array, "Uint32Array", out);
}

int wl_i32_optional(napi_env env, napi_value v, const char* op, const char* name, wl_array* out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) == napi_ok && (type == napi_undefined || type == napi_null)) {
    out->data = NULL;
    out->length = 0;
    return 0;
  }
  return typed(env, v, op, name, napi_int32_array, "Int32Array", out);
}

int wl_count(napi_env env, const char* op, size_t count, const char* name, size_t length) {
  if (count > length) {
    wl_throw_range(env, op, "count %zu is more than %s holds (%zu)", count, name, length);
    return -1;
  }
  return 0;
}

int wl_regions(napi_env env, const char* op, const wl_array* memory, const wl_array* offsets,
               const wl_array* sizes, const char* sizes_name, size_t count) {
  if (wl_count(env, op, count, "offsets", offsets->length) != 0 ||
      wl_count(env, op, count, sizes_name, sizes->length) != 0) {
    return -1;
  }
  const uint32_t* off = offsets->data;
  const uint32_t* size = sizes->data;
  for (size_t i = 0; i < count; i++) {
    if ((uint64_t)off[i] + size[i] > memory->length) {
      wl_throw_range(env, op, "packet %zu: offset %u + %s %u is past the end of memory (%zu bytes)", i,
                     off[i], sizes_name, size[i], memory->length);
      return -1;
    }
  }
  return 0;
}
