/*
 * Batched UDP: recvmmsg/sendmmsg straight between the socket and the caller's memory (the engine's
 * WebAssembly memory), WL_CHUNK messages per syscall.
 *
 * 1. udpOpen: a non-blocking socket of one family (IPv6 sockets are IPV6_V6ONLY, as wireguard-go's),
 *    SO_REUSEADDR off, buffers raised as far as the kernel lets us, bound; returns the bound port.
 * 2. udpRecv: recvmmsg(MSG_DONTWAIT | MSG_TRUNC) until max datagrams or the queue is empty. A length
 *    out greater than the capacity means the datagram was truncated (MSG_TRUNC reports the real size).
 * 3. udpSend: sendmmsg(MSG_DONTWAIT) until count or the socket is full (EAGAIN, ENOBUFS). A datagram
 *    the kernel refuses (no route, too big, bad address, firewall) is dropped and its errno goes to
 *    statuses; only errors of the socket itself throw.
 *
 * Endpoints are WL_ADDRESS_SIZE (20) bytes each in the address arrays:
 *   [0] family: 4 or 6   [1] zero   [2..3] port, big-endian   [4..19] address (IPv4 in 4..7, rest zero)
 * IPv6 scope ids and flow labels are not carried.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "native.h"

/* Socket buffer sizes we ask for: room for a few thousand full-size datagrams per direction. */
#define WL_SOCKET_BUFFER (7 * 1024 * 1024)

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} wl_sockaddr;

static void grow_buffer(int fd, int force, int plain) {
  int size = WL_SOCKET_BUFFER;
  /* The *FORCE variants pass net.core.[rw]mem_max when we have CAP_NET_ADMIN; otherwise the kernel
   * caps the plain option at the sysctl, which is still better than the default. */
  if (setsockopt(fd, SOL_SOCKET, force, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, plain, &size, sizeof size);
  }
}

/* udpOpen(family: 4 | 6, bindAddress: string, port) -> { fd, port } */
napi_value wl_udp_open(napi_env env, napi_callback_info info) {
  const char* op = "udpOpen";
  napi_value argv[3];
  int64_t family, port;
  char address[INET6_ADDRSTRLEN];
  if (wl_args(env, info, op, 3, 3, argv) != 0 || wl_int(env, argv[0], op, "family", 4, 6, &family) != 0 ||
      wl_string(env, argv[1], op, "bindAddress", address, sizeof address) != 0 ||
      wl_int(env, argv[2], op, "port", 0, 65535, &port) != 0) {
    return NULL;
  }
  if (family != 4 && family != 6) return wl_throw_range(env, op, "family must be 4 or 6, got %lld", (long long)family);

  wl_sockaddr addr;
  socklen_t addr_len;
  memset(&addr, 0, sizeof addr);
  if (family == 4) {
    addr.in4.sin_family = AF_INET;
    addr.in4.sin_port = htons((uint16_t)port);
    if (address[0] != '\0' && inet_pton(AF_INET, address, &addr.in4.sin_addr) != 1) {
      return wl_throw_type(env, op, "bindAddress %s is not an IPv4 address", address);
    }
    addr_len = sizeof addr.in4;
  } else {
    addr.in6.sin6_family = AF_INET6;
    addr.in6.sin6_port = htons((uint16_t)port);
    if (address[0] != '\0' && inet_pton(AF_INET6, address, &addr.in6.sin6_addr) != 1) {
      return wl_throw_type(env, op, "bindAddress %s is not an IPv6 address", address);
    }
    addr_len = sizeof addr.in6;
  }

  int fd = socket(addr.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return wl_throw_errno(env, op, errno);
  int on = 1;
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) {
    int err = errno;
    close(fd);
    return wl_throw_errno(env, op, err);
  }
  grow_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  grow_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
  if (bind(fd, &addr.sa, addr_len) != 0) {
    int err = errno;
    close(fd);
    return wl_throw_errno(env, op, err);
  }
  wl_sockaddr bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, &bound.sa, &bound_len) != 0) {
    int err = errno;
    close(fd);
    return wl_throw_errno(env, op, err);
  }
  uint16_t bound_port = ntohs(family == 4 ? bound.in4.sin_port : bound.in6.sin6_port);

  napi_value out, fd_value, port_value;
  if (napi_create_object(env, &out) != napi_ok || napi_create_int32(env, fd, &fd_value) != napi_ok ||
      napi_create_uint32(env, bound_port, &port_value) != napi_ok ||
      napi_set_named_property(env, out, "fd", fd_value) != napi_ok ||
      napi_set_named_property(env, out, "port", port_value) != napi_ok) {
    close(fd);
    return wl_throw_napi(env, "udpOpen result");
  }
  return out;
}

static void encode_endpoint(const wl_sockaddr* addr, uint8_t* out) {
  memset(out, 0, WL_ADDRESS_SIZE);
  if (addr->sa.sa_family == AF_INET) {
    out[0] = 4;
    memcpy(out + 2, &addr->in4.sin_port, 2);
    memcpy(out + 4, &addr->in4.sin_addr, 4);
  } else if (addr->sa.sa_family == AF_INET6) {
    out[0] = 6;
    memcpy(out + 2, &addr->in6.sin6_port, 2);
    memcpy(out + 4, &addr->in6.sin6_addr, 16);
  }
}

/* Returns the sockaddr length, or 0 if the entry names no family we know. */
static socklen_t decode_endpoint(const uint8_t* in, wl_sockaddr* addr) {
  memset(addr, 0, sizeof *addr);
  if (in[0] == 4) {
    addr->in4.sin_family = AF_INET;
    memcpy(&addr->in4.sin_port, in + 2, 2);
    memcpy(&addr->in4.sin_addr, in + 4, 4);
    return sizeof addr->in4;
  }
  if (in[0] == 6) {
    addr->in6.sin6_family = AF_INET6;
    memcpy(&addr->in6.sin6_port, in + 2, 2);
    memcpy(&addr->in6.sin6_addr, in + 4, 16);
    return sizeof addr->in6;
  }
  return 0;
}

static int address_room(napi_env env, const char* op, const wl_array* addresses, size_t count) {
  if (addresses->length / WL_ADDRESS_SIZE < count) {
    wl_throw_range(env, op, "addresses holds %zu bytes, %zu packets need %zu", addresses->length, count,
                   count * WL_ADDRESS_SIZE);
    return -1;
  }
  return 0;
}

/* udpRecv(fd, memory, offsets, capacities, lengthsOut, addressesOut, max) -> count */
napi_value wl_udp_recv(napi_env env, napi_callback_info info) {
  const char* op = "udpRecv";
  napi_value argv[7];
  int fd;
  int64_t max;
  wl_array memory, offsets, capacities, lengths, addresses;
  if (wl_args(env, info, op, 7, 7, argv) != 0 || wl_fd(env, argv[0], op, &fd) != 0 ||
      wl_u8(env, argv[1], op, "memory", &memory) != 0 || wl_u32(env, argv[2], op, "offsets", &offsets) != 0 ||
      wl_u32(env, argv[3], op, "capacities", &capacities) != 0 ||
      wl_u32(env, argv[4], op, "lengths", &lengths) != 0 || wl_u8(env, argv[5], op, "addresses", &addresses) != 0 ||
      wl_int(env, argv[6], op, "max", 0, UINT32_MAX, &max) != 0 ||
      wl_count(env, op, (size_t)max, "lengths", lengths.length) != 0 ||
      address_room(env, op, &addresses, (size_t)max) != 0 ||
      wl_regions(env, op, &memory, &offsets, &capacities, "capacity", (size_t)max) != 0) {
    return NULL;
  }
  uint8_t* mem = memory.data;
  const uint32_t* off = offsets.data;
  const uint32_t* cap = capacities.data;
  uint32_t* len = lengths.data;
  uint8_t* out = addresses.data;

  struct mmsghdr msgs[WL_CHUNK];
  struct iovec iov[WL_CHUNK];
  wl_sockaddr from[WL_CHUNK];
  size_t count = 0;
  while (count < (size_t)max) {
    size_t want = (size_t)max - count < WL_CHUNK ? (size_t)max - count : WL_CHUNK;
    memset(msgs, 0, want * sizeof msgs[0]);
    for (size_t i = 0; i < want; i++) {
      iov[i].iov_base = mem + off[count + i];
      iov[i].iov_len = cap[count + i];
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = recvmmsg(fd, msgs, (unsigned)want, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (got < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (count > 0) break; /* report what we have; the error comes back on the next call */
      return wl_throw_errno(env, op, err);
    }
    for (int i = 0; i < got; i++) {
      len[count + i] = msgs[i].msg_len;
      encode_endpoint(&from[i], out + (count + i) * WL_ADDRESS_SIZE);
    }
    count += (size_t)got;
    if ((size_t)got < want) break;
  }
  return wl_number(env, (double)count);
}

/* udpSend(fd, memory, offsets, lengths, addresses, count, statuses?: Int32Array) -> done */
napi_value wl_udp_send(napi_env env, napi_callback_info info) {
  const char* op = "udpSend";
  napi_value argv[7];
  int fd;
  int64_t count;
  wl_array memory, offsets, lengths, addresses, statuses;
  if (wl_args(env, info, op, 6, 7, argv) != 0 || wl_fd(env, argv[0], op, &fd) != 0 ||
      wl_u8(env, argv[1], op, "memory", &memory) != 0 || wl_u32(env, argv[2], op, "offsets", &offsets) != 0 ||
      wl_u32(env, argv[3], op, "lengths", &lengths) != 0 || wl_u8(env, argv[4], op, "addresses", &addresses) != 0 ||
      wl_int(env, argv[5], op, "count", 0, UINT32_MAX, &count) != 0 ||
      wl_i32_optional(env, argv[6], op, "statuses", &statuses) != 0 ||
      (statuses.data && wl_count(env, op, (size_t)count, "statuses", statuses.length) != 0) ||
      address_room(env, op, &addresses, (size_t)count) != 0 ||
      wl_regions(env, op, &memory, &offsets, &lengths, "length", (size_t)count) != 0) {
    return NULL;
  }
  uint8_t* mem = memory.data;
  const uint32_t* off = offsets.data;
  const uint32_t* len = lengths.data;
  const uint8_t* in = addresses.data;
  int32_t* status = statuses.data;

  struct mmsghdr msgs[WL_CHUNK];
  struct iovec iov[WL_CHUNK];
  wl_sockaddr to[WL_CHUNK];
  size_t done = 0;
  while (done < (size_t)count) {
    size_t want = (size_t)count - done < WL_CHUNK ? (size_t)count - done : WL_CHUNK;
    size_t ready = 0;
    memset(msgs, 0, want * sizeof msgs[0]);
    for (; ready < want; ready++) {
      socklen_t to_len = decode_endpoint(in + (done + ready) * WL_ADDRESS_SIZE, &to[ready]);
      if (to_len == 0) break; /* sent up to here; this one is dropped below */
      iov[ready].iov_base = mem + off[done + ready];
      iov[ready].iov_len = len[done + ready];
      msgs[ready].msg_hdr.msg_name = &to[ready];
      msgs[ready].msg_hdr.msg_namelen = to_len;
      msgs[ready].msg_hdr.msg_iov = &iov[ready];
      msgs[ready].msg_hdr.msg_iovlen = 1;
    }
    if (ready == 0) {
      if (status) status[done] = EAFNOSUPPORT;
      done++;
      continue;
    }
    int sent = sendmmsg(fd, msgs, (unsigned)ready, MSG_DONTWAIT);
    if (sent < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
      if (wl_is_fatal(err)) {
        if (done > 0) break;
        return wl_throw_errno(env, op, err);
      }
      /* sendmmsg fails only on its first message; that one is dropped. */
      if (status) status[done] = err;
      done++;
      continue;
    }
    if (status) memset(status + done, 0, (size_t)sent * sizeof *status);
    done += (size_t)sent;
    /* Fewer than ready: the next call starts at the message that failed and reports its error. */
  }
  return wl_number(env, (double)done);
}
