/*
 * Readiness through libuv: one uv_poll_t per polled fd (libuv allows no more), so JavaScript hears
 * when a TUN or UDP fd is readable or writable and then drains it with one batch call. No threads,
 * no busy loop: the fd sits in Node's own epoll set.
 *
 * The handle JavaScript gets back is the fd itself. poll() on a polled fd changes its events and
 * callback; pollStop() and close() stop it. A poll may be stopped from inside its own callback, so
 * its Node-API references are released after the callback returns, and its memory when libuv has
 * closed the handle.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "native.h"

typedef struct wl_poller wl_poller;

typedef struct {
  napi_env env;
  uv_loop_t* loop;
  wl_poller* polls;
  bool tearing_down;
} wl_state;

struct wl_poller {
  uv_poll_t handle;
  wl_state* state;
  wl_poller* next;
  int fd;
  napi_ref callback;
  napi_async_context context;
  bool in_callback;
  bool stopped;
};

static void release(wl_poller* p) {
  napi_env env = p->state->env;
  if (p->callback) napi_delete_reference(env, p->callback);
  if (p->context) napi_async_destroy(env, p->context);
  p->callback = NULL;
  p->context = NULL;
}

static void on_closed(uv_handle_t* handle) {
  free(handle->data);
}

/* Unlinks p and closes its handle; references go now, or after the callback that is running. */
static void stop(wl_state* state, wl_poller* p) {
  for (wl_poller** link = &state->polls; *link; link = &(*link)->next) {
    if (*link == p) {
      *link = p->next;
      break;
    }
  }
  p->stopped = true;
  if (!p->in_callback && !state->tearing_down) release(p);
  uv_close((uv_handle_t*)&p->handle, on_closed);
}

static wl_poller* find(wl_state* state, int fd) {
  for (wl_poller* p = state->polls; p; p = p->next) {
    if (p->fd == fd) return p;
  }
  return NULL;
}

static void on_poll(uv_poll_t* handle, int status, int events) {
  wl_poller* p = handle->data;
  if (p->stopped) return;
  napi_env env = p->state->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, recv, argv[2], result;
  if (napi_get_reference_value(env, p->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, status < 0 ? 0 : events, &argv[1]) == napi_ok) {
    p->in_callback = true;
    napi_status s = napi_make_callback(env, p->context, recv, callback, 2, argv, &result);
    p->in_callback = false;
    if (s == napi_pending_exception) {
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    }
  }
  if (p->stopped) release(p);
  napi_close_handle_scope(env, scope);
}

static void teardown(void* data) {
  wl_state* state = data;
  state->tearing_down = true;
  while (state->polls) stop(state, state->polls);
  free(state);
}

int wl_poll_init(napi_env env) {
  wl_state* state = calloc(1, sizeof *state);
  if (!state) return -1;
  state->env = env;
  if (napi_get_uv_event_loop(env, &state->loop) != napi_ok ||
      napi_set_instance_data(env, state, NULL, NULL) != napi_ok ||
      napi_add_env_cleanup_hook(env, teardown, state) != napi_ok) {
    free(state);
    return -1;
  }
  return 0;
}

static wl_state* get_state(napi_env env) {
  void* data = NULL;
  napi_get_instance_data(env, &data);
  return data;
}

void wl_poll_forget(napi_env env, int fd) {
  wl_state* state = get_state(env);
  wl_poller* p = state ? find(state, fd) : NULL;
  if (p) stop(state, p);
}

/* poll(fd, events: READABLE | WRITABLE, callback(status, events)) -> fd */
napi_value wl_poll(napi_env env, napi_callback_info info) {
  const char* op = "poll";
  napi_value argv[3];
  int fd;
  int64_t events;
  napi_valuetype type;
  if (wl_args(env, info, op, 3, 3, argv) != 0 || wl_fd(env, argv[0], op, &fd) != 0 ||
      wl_int(env, argv[1], op, "events", 1, UV_READABLE | UV_WRITABLE, &events) != 0) {
    return NULL;
  }
  if (napi_typeof(env, argv[2], &type) != napi_ok || type != napi_function) {
    return wl_throw_type(env, op, "callback must be a function");
  }
  wl_state* state = get_state(env);
  if (!state) return wl_throw_napi(env, "napi_get_instance_data");

  wl_poller* p = find(state, fd);
  bool fresh = p == NULL;
  if (fresh) {
    p = calloc(1, sizeof *p);
    if (!p) return wl_throw_errno(env, op, ENOMEM);
    p->state = state;
    p->fd = fd;
    p->handle.data = p;
    int rc = uv_poll_init(state->loop, &p->handle, fd);
    if (rc != 0) {
      free(p);
      return wl_throw_errno(env, op, -rc);
    }
    napi_value name;
    if (napi_create_string_utf8(env, "WardlinePoll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_async_init(env, NULL, name, &p->context) != napi_ok) {
      uv_close((uv_handle_t*)&p->handle, on_closed);
      return wl_throw_napi(env, "napi_async_init");
    }
    p->next = state->polls;
    state->polls = p;
  }
  napi_ref callback;
  if (napi_create_reference(env, argv[2], 1, &callback) != napi_ok) {
    if (fresh) stop(state, p);
    return wl_throw_napi(env, "napi_create_reference");
  }
  if (p->callback) napi_delete_reference(env, p->callback);
  p->callback = callback;
  int rc = uv_poll_start(&p->handle, (int)events, on_poll);
  if (rc != 0) {
    stop(state, p);
    return wl_throw_errno(env, op, -rc);
  }
  return wl_number(env, fd);
}

/* pollStop(fd) -> whether fd was polled */
napi_value wl_poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (wl_args(env, info, "pollStop", 1, 1, argv) != 0 || wl_fd(env, argv[0], "pollStop", &fd) != 0) return NULL;
  wl_state* state = get_state(env);
  wl_poller* p = state ? find(state, fd) : NULL;
  if (p) stop(state, p);
  napi_value out;
  napi_get_boolean(env, p != NULL, &out);
  return out;
}

/* close(fd): stops its poll first, so libuv never watches a closed (or reused) descriptor. */
napi_value wl_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (wl_args(env, info, "close", 1, 1, argv) != 0 || wl_fd(env, argv[0], "close", &fd) != 0) return NULL;
  wl_poll_forget(env, fd);
  /* On Linux the descriptor is gone even when close() reports EINTR, so it is never retried. */
  if (close(fd) != 0 && errno != EINTR) return wl_throw_errno(env, "close", errno);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}
