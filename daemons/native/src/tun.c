/*
 * The TUN device: layer-3 packets with no packet-information header (IFF_TUN | IFF_NO_PI), read and
 * written one syscall per packet (a TUN fd has no batch syscall without IFF_VNET_HDR offloads).
 *
 * 1. tunOpen: /dev/net/tun, TUNSETIFF, non-blocking; the kernel names the device from a template.
 * 2. tunRead: read() into each offset until max packets or EAGAIN; lengths out.
 * 3. tunWrite: write() each packet until count or EAGAIN; a packet the kernel refuses is dropped
 *    (its errno goes to statuses), it does not throw.
 * Addresses, MTU and link state are set by the caller (`ip addr`, `ip link`) for now.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "native.h"

/* tunOpen(name: string) -> { fd, name } */
napi_value wl_tun_open(napi_env env, napi_callback_info info) {
  const char* op = "tunOpen";
  napi_value argv[1];
  char name[IFNAMSIZ];
  if (wl_args(env, info, op, 1, 1, argv) != 0) return NULL;
  if (wl_string(env, argv[0], op, "name", name, sizeof name) != 0) return NULL;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return wl_throw_errno(env, op, errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, strlen(name));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return wl_throw_errno(env, op, err);
  }
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';

  napi_value out, fd_value, name_value;
  if (napi_create_object(env, &out) != napi_ok || napi_create_int32(env, fd, &fd_value) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &name_value) != napi_ok ||
      napi_set_named_property(env, out, "fd", fd_value) != napi_ok ||
      napi_set_named_property(env, out, "name", name_value) != napi_ok) {
    close(fd);
    return wl_throw_napi(env, "tunOpen result");
  }
  return out;
}

/* tunRead(fd, memory, offsets, capacities, lengthsOut, max) -> count */
napi_value wl_tun_read(napi_env env, napi_callback_info info) {
  const char* op = "tunRead";
  napi_value argv[6];
  int fd;
  int64_t max;
  wl_array memory, offsets, capacities, lengths;
  if (wl_args(env, info, op, 6, 6, argv) != 0 || wl_fd(env, argv[0], op, &fd) != 0 ||
      wl_u8(env, argv[1], op, "memory", &memory) != 0 ||
      wl_u32(env, argv[2], op, "offsets", &offsets) != 0 ||
      wl_u32(env, argv[3], op, "capacities", &capacities) != 0 ||
      wl_u32(env, argv[4], op, "lengths", &lengths) != 0 ||
      wl_int(env, argv[5], op, "max", 0, UINT32_MAX, &max) != 0 ||
      wl_count(env, op, (size_t)max, "lengths", lengths.length) != 0 ||
      wl_regions(env, op, &memory, &offsets, &capacities, "capacity", (size_t)max) != 0) {
    return NULL;
  }
  uint8_t* mem = memory.data;
  const uint32_t* off = offsets.data;
  const uint32_t* cap = capacities.data;
  uint32_t* len = lengths.data;
  size_t count = 0;
  while (count < (size_t)max) {
    ssize_t n = read(fd, mem + off[count], cap[count]);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* Packets already read stay valid; report them, and the error on the next call. */
      if (count > 0) break;
      return wl_throw_errno(env, op, errno);
    }
    len[count++] = (uint32_t)n;
  }
  return wl_number(env, (double)count);
}

/* tunWrite(fd, memory, offsets, lengths, count, statuses?: Int32Array) -> done */
napi_value wl_tun_write(napi_env env, napi_callback_info info) {
  const char* op = "tunWrite";
  napi_value argv[6];
  int fd;
  int64_t count;
  wl_array memory, offsets, lengths, statuses;
  if (wl_args(env, info, op, 5, 6, argv) != 0 || wl_fd(env, argv[0], op, &fd) != 0 ||
      wl_u8(env, argv[1], op, "memory", &memory) != 0 ||
      wl_u32(env, argv[2], op, "offsets", &offsets) != 0 || wl_u32(env, argv[3], op, "lengths", &lengths) != 0 ||
      wl_int(env, argv[4], op, "count", 0, UINT32_MAX, &count) != 0 ||
      wl_i32_optional(env, argv[5], op, "statuses", &statuses) != 0 ||
      (statuses.data && wl_count(env, op, (size_t)count, "statuses", statuses.length) != 0) ||
      wl_regions(env, op, &memory, &offsets, &lengths, "length", (size_t)count) != 0) {
    return NULL;
  }
  const uint8_t* mem = memory.data;
  const uint32_t* off = offsets.data;
  const uint32_t* len = lengths.data;
  int32_t* status = statuses.data;
  size_t done = 0;
  while (done < (size_t)count) {
    ssize_t n = write(fd, mem + off[done], len[done]);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (wl_is_fatal(err)) {
        if (done > 0) break;
        return wl_throw_errno(env, op, err);
      }
      if (status) status[done] = err; /* e.g. EINVAL: not an IP packet; dropped */
      done++;
      continue;
    }
    if (status) status[done] = 0;
    done++;
  }
  return wl_number(env, (double)done);
}
