/* swapfile.c: the swap directory and this process's swap file.
 *
 * One unlinked file per process backs every big region; a region's file offset is its
 * distance from the start of the reserved range, so each region owns a contiguous
 * range of offsets and can grow in place. After a fork the parent may use several such
 * files, all at the same offsets (cow.c); bm_swap.fd is the one new regions go to. O_TMPFILE (or create-then-unlink where the
 * filesystem lacks it) means nothing is left behind, even after kill -9. Only the
 * directories we create get mode 0700; a directory the user chose is used as it is.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

struct bm_swap bm_swap = {.fd = -1};

/* mkdir -p, creating missing components 0700. */
static bool make_dirs(const char *path)
{
    char partial[BIGMAAC_PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof partial)
        return false;
    memcpy(partial, path, len + 1);
    for (char *p = partial + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(partial, 0700) != 0 && errno != EEXIST)
            return false;
        *p = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int open_unlinked(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    static unsigned counter;
    char path[BIGMAAC_PATH_MAX + 64];
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(path, sizeof path, "%s/.bigmaac-%d-%u", dir, (int)getpid(),
                 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
        fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            unlink(path);
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

static const char *fs_name(uint64_t magic)
{
    switch (magic) {
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case TMPFS_MAGIC: return "tmpfs";
    case RAMFS_MAGIC: return "ramfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlay";
    case NFS_SUPER_MAGIC: return "nfs";
    case 0x2fc12fc1: return "zfs";
    case 0x65735546: return "fuse";
    default: return NULL;
    }
}

static void describe_fs(int fd)
{
    struct statfs st;
    if (fstatfs(fd, &st) != 0)
        return;
    bm_swap.fs_magic = (uint64_t)st.f_type;
    const char *name = fs_name(bm_swap.fs_magic);
    if (name)
        snprintf(bm_swap.fs_name, sizeof bm_swap.fs_name, "%s", name);
    else
        snprintf(bm_swap.fs_name, sizeof bm_swap.fs_name, "0x%llx", (unsigned long long)st.f_type);
    bm_swap.on_ram = st.f_type == TMPFS_MAGIC || st.f_type == RAMFS_MAGIC;
    if (bm_swap.on_ram)
        bm_warn("swap directory %s is on %s, which is RAM: big allocations save no memory "
                "(set BIGMAAC_DIR to a directory on disk)", bm_config.swap_dir, bm_swap.fs_name);
}

int bm_swap_open_file(void)
{
    return make_dirs(bm_config.swap_dir) ? open_unlinked(bm_config.swap_dir) : -1;
}

void bm_swap_set_active(int fd)
{
    __atomic_store_n(&bm_swap.fd, fd, __ATOMIC_RELAXED);
    bm_swap.unusable = fd < 0;
}

static uint64_t no_fallocate_fallbacks;

bool bm_swap_reserve_failed(int err)
{
    if (err != EOPNOTSUPP && err != ENOSYS)
        return false;
    __atomic_add_fetch(&no_fallocate_fallbacks, 1, __ATOMIC_RELAXED);
    if (!__atomic_exchange_n(&bm_swap.no_fallocate, true, __ATOMIC_RELAXED))
        bm_warn("swap directory %s (%s) cannot reserve disk space (fallocate: %s): "
                "disk-backed allocations stay in RAM (set BIGMAAC_DIR to a local filesystem "
                "with fallocate: ext4 with extents, xfs, btrfs)",
                bm_config.swap_dir, bm_swap.fs_name[0] ? bm_swap.fs_name : "unknown filesystem",
                strerror(err));
    return true;
}

bool bm_swap_ensure(void)
{
    if (__atomic_load_n(&bm_swap.no_fallocate, __ATOMIC_RELAXED)) {
        /* Without fallocate a full disk would be SIGBUS on a later write: RAM instead. */
        __atomic_add_fetch(&no_fallocate_fallbacks, 1, __ATOMIC_RELAXED);
        return false;
    }
    if (bm_swap.fd >= 0)
        return true;
    if (bm_swap.unusable)
        return false;
    const char *dir = bm_config.swap_dir;
    int fd = make_dirs(dir) ? open_unlinked(dir) : -1;
    if (fd < 0) {
        bm_warn("cannot use swap directory %s (%s); big allocations stay in RAM", dir,
                strerror(errno));
        bm_swap.unusable = true;
        return false;
    }
    bm_swap.fd = fd;
    describe_fs(fd);
    bm_debug("swap file in %s (%s)", dir, bm_swap.fs_name);
    return true;
}

BM_EXPORT int bigmaac_swap_stats(struct bigmaac_swap_stats *out)
{
    if (!out)
        return BIGMAAC_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->no_fallocate_fallbacks = __atomic_load_n(&no_fallocate_fallbacks, __ATOMIC_RELAXED);
    out->no_fallocate = __atomic_load_n(&bm_swap.no_fallocate, __ATOMIC_RELAXED);
    out->on_ram = bm_swap.on_ram;
    return BIGMAAC_OK;
}
