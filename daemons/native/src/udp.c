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
 *    With a gso state of 1, runs of datagrams to one endpoint, of one length (the run's last may be
 *    shorter), go as one message with UDP_SEGMENT (Linux 4.18+): the stack, and every namespace,
 *    bridge and NAT it crosses, handles one buffer where it handled up to WL_GSO_MAX datagrams, and
 *    the receiver still gets them one by one. A kernel that refuses segmentation for the route (EIO,
 *    EINVAL) gets the run again datagram by datagram, and the state is set to 0 for the caller to keep;
 *    segments over the path MTU (EMSGSIZE) go again singly, to be fragmented as unsegmented ones are.
 *
 * Endpoints are WL_ADDRESS_SIZE (20) bytes each in the address arrays:
 *   [0] family: 4 or 6   [1] zero   [2..3] port, big-endian   [4..19] address (IPv4 in 4..7, rest zero)
 * IPv6 scope ids and flow labels are not carried.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "native.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
/* Datagrams per segmented message (the kernel's UDP_MAX_SEGMENTS) and bytes per message. */
#define WL_GSO_MAX 64
#define WL_GSO_BYTES 65000

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

/* udpSend(fd, memory, offsets, lengths, addresses, count, statuses?: Int32Array, gso?: Int32Array(1)) -> done */
napi_value wl_udp_send(napi_env env, napi_callback_info info) {
  const char* op = "udpSend";
  napi_value argv[8];
  int fd;
  int64_t count;
  wl_array memory, offsets, lengths, addresses, statuses, gso_state;
  if (wl_args(env, info, op, 6, 8, argv) != 0 || wl_fd(env, argv[0], op, &fd) != 0 ||
      wl_u8(env, argv[1], op, "memory", &memory) != 0 || wl_u32(env, argv[2], op, "offsets", &offsets) != 0 ||
      wl_u32(env, argv[3], op, "lengths", &lengths) != 0 || wl_u8(env, argv[4], op, "addresses", &addresses) != 0 ||
      wl_int(env, argv[5], op, "count", 0, UINT32_MAX, &count) != 0 ||
      wl_i32_optional(env, argv[6], op, "statuses", &statuses) != 0 ||
      wl_i32_optional(env, argv[7], op, "gso", &gso_state) != 0 ||
      (gso_state.data && wl_count(env, op, 1, "gso", gso_state.length) != 0) ||
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
  int32_t* gso = gso_state.data;

  /* One message per run of datagrams (one datagram each without gso); at most WL_CHUNK datagrams per call. */
  struct mmsghdr msgs[WL_CHUNK];
  struct iovec iov[WL_CHUNK];
  wl_sockaddr to[WL_CHUNK];
  size_t runs[WL_CHUNK];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control[WL_CHUNK];
  size_t done = 0;
  int singly = 0; /* the next call sends datagram by datagram */
  while (done < (size_t)count) {
    size_t want = (size_t)count - done < WL_CHUNK ? (size_t)count - done : WL_CHUNK;
    size_t ready = 0; /* datagrams in this call */
    size_t nmsgs = 0;
    int segmenting = gso != NULL && *gso == 1 && !singly;
    singly = 0;
    memset(msgs, 0, want * sizeof msgs[0]);
    while (ready < want) {
      size_t first = done + ready;
      socklen_t to_len = decode_endpoint(in + first * WL_ADDRESS_SIZE, &to[nmsgs]);
      if (to_len == 0) break; /* sent up to here; this one is dropped below */
      size_t n = 1;
      size_t bytes = len[first];
      if (segmenting && len[first] > 0) {
        /* Same endpoint, same length; a shorter one ends the run. */
        while (ready + n < want && n < WL_GSO_MAX && len[first + n - 1] == len[first] && len[first + n] > 0 &&
               len[first + n] <= len[first] && bytes + len[first + n] <= WL_GSO_BYTES &&
               memcmp(in + first * WL_ADDRESS_SIZE, in + (first + n) * WL_ADDRESS_SIZE, WL_ADDRESS_SIZE) == 0) {
          bytes += len[first + n];
          n++;
        }
      }
      for (size_t k = 0; k < n; k++) {
        iov[ready + k].iov_base = mem + off[first + k];
        iov[ready + k].iov_len = len[first + k];
      }
      struct msghdr* h = &msgs[nmsgs].msg_hdr;
      h->msg_name = &to[nmsgs];
      h->msg_namelen = to_len;
      h->msg_iov = &iov[ready];
      h->msg_iovlen = n;
      if (n > 1) {
        h->msg_control = control[nmsgs].buf;
        h->msg_controllen = sizeof control[nmsgs].buf;
        struct cmsghdr* c = CMSG_FIRSTHDR(h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t size = (uint16_t)len[first];
        memcpy(CMSG_DATA(c), &size, sizeof size);
      }
      runs[nmsgs++] = n;
      ready += n;
    }
    if (nmsgs == 0) {
      if (status) status[done] = EAFNOSUPPORT;
      done++;
      continue;
    }
    int sent = sendmmsg(fd, msgs, (unsigned)nmsgs, MSG_DONTWAIT);
    if (sent < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
      if ((err == EIO || err == EINVAL) && runs[0] > 1) {
        /* The route cannot segment: from now on, datagram by datagram. */
        *gso = 0;
        continue;
      }
      if (err == EMSGSIZE && runs[0] > 1) {
        /* Segments larger than the path MTU: sent singly, the kernel fragments them as it would have. */
        singly = 1;
        continue;
      }
      if (wl_is_fatal(err)) {
        if (done > 0) break;
        return wl_throw_errno(env, op, err);
      }
      /* sendmmsg fails only on its first message; its datagrams are dropped. */
      for (size_t k = 0; k < runs[0]; k++) {
        if (status) status[done] = err;
        done++;
      }
      continue;
    }
    for (int m = 0; m < sent; m++) {
      if (status) memset(status + done, 0, runs[m] * sizeof *status);
      done += runs[m];
    }
    /* Fewer than nmsgs: the next call starts at the message that failed and reports its error. */
  }
  return wl_number(env, (double)done);
}
