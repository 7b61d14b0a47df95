/* syscalls.c: system calls that write into user memory, made safe for frozen chunks.
 *
 * While a forked child lives, the parent's disk-backed chunks it may see are
 * write-protected (cow.c). A store from user space faults into cow.c's handler, which
 * copies the chunk and lets the store proceed; a write by the kernel during a system
 * call does not fault: the call fails with EFAULT (Python: "OSError: [Errno 14] Bad
 * address"). So the libc entry points a numeric program reads data through make their
 * destination writable first, then call the next definition (libc's).
 *
 * The set: read, pread(64), readv, preadv(64), preadv2 (files, pipes: numpy's readinto,
 * Python's file objects, h5py/zarr chunk reads), recv, recvfrom, recvmsg (sockets:
 * ZeroMQ, multiprocessing connections), getrandom (seeding straight into an array),
 * and fread: glibc reads requests larger than the stream's buffer directly into the
 * caller's memory, and that call is internal to libc, not one of the above. Not
 * covered (docs/fork.md): raw syscall(2), io_uring and AIO, recvmmsg, and libc-internal
 * reads other than fread's.
 *
 * The fast path is one range compare: destinations outside our address space go
 * straight on. The next symbols are resolved once, on first use.
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Could [buf, buf+len) overlap our space? */
static inline bool may_be_ours(const void *buf, size_t len)
{
    uintptr_t at = (uintptr_t)buf, base = __atomic_load_n(&bm_space.base, __ATOMIC_RELAXED);
    size_t size = __atomic_load_n(&bm_space.size, __ATOMIC_ACQUIRE);
    return at - base < size || (at < base && len > base - at && size);
}

static void prepare(const void *buf, size_t len)
{
    if (may_be_ours(buf, len))
        bm_cow_prepare_write((uintptr_t)buf, len);
}

static void prepare_iov(const struct iovec *iov, int count)
{
    for (int i = 0; iov && i < count; i++)
        prepare(iov[i].iov_base, iov[i].iov_len);
}

/* libc's definition of name, looked up once. With none (libc not loaded?), the call
 * fails with ENOSYS rather than recursing into us. */
static void *resolve_next(void **slot, const char *name)
{
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    if (!fn)
        errno = ENOSYS;
    return fn;
}

/* next: libc's definition of the function it is used in (same prototype as ours). */
#define NEXT(name)                                                                        \
    static void *next_##name;                                                             \
    __typeof__(&name) next = (__typeof__(&name))resolve_next(&next_##name, #name);

BM_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
    NEXT(read)
    prepare(buf, count);
    return next ? next(fd, buf, count) : -1;
}

BM_EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
    NEXT(pread)
    prepare(buf, count);
    return next ? next(fd, buf, count, offset) : -1;
}

BM_EXPORT ssize_t pread64(int fd, void *buf, size_t count, off64_t offset)
{
    NEXT(pread64)
    prepare(buf, count);
    return next ? next(fd, buf, count, offset) : -1;
}

BM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    NEXT(readv)
    prepare_iov(iov, iovcnt);
    return next ? next(fd, iov, iovcnt) : -1;
}

BM_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    NEXT(preadv)
    prepare_iov(iov, iovcnt);
    return next ? next(fd, iov, iovcnt, offset) : -1;
}

BM_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int iovcnt, off64_t offset)
{
    NEXT(preadv64)
    prepare_iov(iov, iovcnt);
    return next ? next(fd, iov, iovcnt, offset) : -1;
}

BM_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
    NEXT(preadv2)
    prepare_iov(iov, iovcnt);
    return next ? next(fd, iov, iovcnt, offset, flags) : -1;
}

BM_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    NEXT(recv)
    prepare(buf, len);
    return next ? next(fd, buf, len, flags) : -1;
}

BM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                           socklen_t *from_len)
{
    NEXT(recvfrom)
    prepare(buf, len);
    return next ? next(fd, buf, len, flags, from, from_len) : -1;
}

BM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    NEXT(recvmsg)
    if (msg)
        prepare_iov(msg->msg_iov, (int)msg->msg_iovlen);
    return next ? next(fd, msg, flags) : -1;
}

BM_EXPORT ssize_t getrandom(void *buf, size_t len, unsigned flags)
{
    NEXT(getrandom)
    prepare(buf, len);
    return next ? next(buf, len, flags) : -1;
}

BM_EXPORT size_t fread(void *ptr, size_t size, size_t n, FILE *stream)
{
    NEXT(fread)
    if (!n || size <= SIZE_MAX / n) /* an overflowing request fails in libc */
        prepare(ptr, size * n);
    return next ? next(ptr, size, n, stream) : 0;
}
