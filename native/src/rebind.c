/* rebind.c: libraries that bypass us (RTLD_DEEPBIND) are bound back to us.
 *
 * A library opened with RTLD_DEEPBIND looks symbols up in itself and its own
 * dependencies first, so its malloc and free bind to libc's, behind the preload: a
 * disk-backed block handed to it would reach libc's free and abort the program. So when
 * the set of loaded objects has changed (dl_iterate_phdr's load count, checked before
 * each big allocation and by the control thread), every object's GOT entries for the
 * malloc family that hold the next allocator's function, or still point into the object
 * itself (a lazy slot not yet resolved), are set to the process's own definitions: ours,
 * when we come first. Blocks the library had from libc before keep working: our free
 * and realloc hand pointers outside our range to the next allocator. Objects that define
 * a malloc of their own, or have one bound to a third allocator, are left alone, and
 * nothing is done when another allocator was preloaded before us (its blocks are not
 * ours to route).
 */
#include "internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__)
#define SLOT_TYPE R_X86_64_JUMP_SLOT
#define DATA_TYPE R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define SLOT_TYPE R_AARCH64_JUMP_SLOT
#define DATA_TYPE R_AARCH64_GLOB_DAT
#endif

#define NAMES 10

static const char *const names[NAMES] = {
    "malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "malloc_usable_size",
};

struct targets {
    uintptr_t ours[NAMES];   /* the process's definitions (ours first) */
    uintptr_t next[NAMES];   /* the next allocator's, which a deep-bound library gets */
    uintptr_t self_base;     /* our own object: never patched */
    unsigned patched;
};

static unsigned long long seen_adds;
static int scanning;

#ifdef SLOT_TYPE

/* Loaded address of a dynamic-section pointer: glibc rewrites most to absolute. */
static uintptr_t dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) value)
{
    return value < info->dlpi_addr ? info->dlpi_addr + value : value;
}

static bool in_object(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && addr - start < ph->p_memsz)
            return true;
    }
    return false;
}

static bool in_relro(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO && addr - (info->dlpi_addr + ph->p_vaddr) < ph->p_memsz)
            return true;
    }
    return false;
}

/* Write a GOT word, opening its page for a moment if RELRO made it read-only. */
static void patch(const struct dl_phdr_info *info, uintptr_t *slot, uintptr_t value)
{
    uintptr_t page = (uintptr_t)slot & ~(uintptr_t)(bm_page_size - 1);
    bool relro = in_relro(info, (uintptr_t)slot);
    if (relro && mprotect((void *)page, bm_page_size, PROT_READ | PROT_WRITE) != 0)
        return;
    __atomic_store_n(slot, value, __ATOMIC_RELAXED);
    if (relro)
        mprotect((void *)page, bm_page_size, PROT_READ);
}

/* With apply false, only look: true if some malloc-family slot is bound to a third
 * allocator (the object's own dependency, say), and the object must be left alone. */
static bool patch_relocations(const struct dl_phdr_info *info, const ElfW(Rela) *rela,
                              size_t bytes, const ElfW(Sym) *symtab, const char *strtab,
                              struct targets *t, bool apply)
{
    for (size_t r = 0; r < bytes / sizeof *rela; r++) {
        unsigned long type = ELF64_R_TYPE(rela[r].r_info);
        if (type != SLOT_TYPE && type != DATA_TYPE)
            continue;
        const ElfW(Sym) *sym = &symtab[ELF64_R_SYM(rela[r].r_info)];
        if (sym->st_shndx != SHN_UNDEF)
            continue;
        const char *name = strtab + sym->st_name;
        for (int i = 0; i < NAMES; i++) {
            if (strcmp(name, names[i]) != 0)
                continue;
            uintptr_t *slot = (uintptr_t *)(info->dlpi_addr + rela[r].r_offset);
            uintptr_t value = __atomic_load_n(slot, __ATOMIC_RELAXED);
            bool bypasses = value == t->next[i] || (type == SLOT_TYPE && in_object(info, value));
            if (!apply && !bypasses && value != t->ours[i])
                return true;
            if (apply && bypasses && t->ours[i] && value != t->ours[i]) {
                patch(info, slot, t->ours[i]);
                t->patched++;
            }
            break;
        }
    }
    return false;
}

static int rebind_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct targets *t = arg;
    if (info->dlpi_addr == t->self_base)
        return 0;
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn || !info->dlpi_name || !info->dlpi_name[0])
        return 0; /* the main program binds to the preload like everyone */
    uintptr_t symtab = 0, strtab = 0, jmprel = 0, rela = 0;
    size_t jmprel_size = 0, rela_size = 0;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: symtab = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_STRTAB: strtab = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_JMPREL: jmprel = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_PLTRELSZ: jmprel_size = dyn->d_un.d_val; break;
        case DT_RELA: rela = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_RELASZ: rela_size = dyn->d_un.d_val; break;
        default: break;
        }
    }
    if (!symtab || !strtab)
        return 0;
    const ElfW(Sym) *syms = (const ElfW(Sym) *)symtab;
    const char *strs = (const char *)strtab;
    const ElfW(Rela) *plt = (const ElfW(Rela) *)jmprel, *data = (const ElfW(Rela) *)rela;
    if (patch_relocations(info, plt, plt ? jmprel_size : 0, syms, strs, t, false) ||
        patch_relocations(info, data, data ? rela_size : 0, syms, strs, t, false))
        return 0;
    patch_relocations(info, plt, plt ? jmprel_size : 0, syms, strs, t, true);
    patch_relocations(info, data, data ? rela_size : 0, syms, strs, t, true);
    return 0;
}

static int read_adds(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(unsigned long long *)arg = info->dlpi_adds;
    return 1; /* the first object is enough */
}

/* Outside the loader's locks: dlsym and dladdr take them. */
static bool find_targets(struct targets *t)
{
    Dl_info self, first;
    memset(t, 0, sizeof *t);
    if (!dladdr((void *)bm_rebind_check, &self) || !dladdr(dlsym(RTLD_DEFAULT, "malloc"), &first))
        return false;
    if (self.dli_fbase != first.dli_fbase)
        return false; /* another allocator comes first: its business */
    t->self_base = (uintptr_t)self.dli_fbase;
    for (int i = 0; i < NAMES; i++) {
        t->ours[i] = (uintptr_t)dlsym(RTLD_DEFAULT, names[i]);
        t->next[i] = (uintptr_t)dlsym(RTLD_NEXT, names[i]);
    }
    return true;
}

void bm_rebind_check(void)
{
    unsigned long long adds = 0;
    dl_iterate_phdr(read_adds, &adds);
    if (adds == __atomic_load_n(&seen_adds, __ATOMIC_ACQUIRE))
        return;
    /* One scan at a time; dlsym may allocate and come back here. */
    if (__atomic_exchange_n(&scanning, 1, __ATOMIC_ACQUIRE))
        return;
    struct targets t;
    if (find_targets(&t)) {
        dl_iterate_phdr(rebind_object, &t);
        if (t.patched)
            bm_debug("bound %u malloc-family references of deep-bound libraries back to us",
                     t.patched);
    }
    __atomic_store_n(&seen_adds, adds, __ATOMIC_RELEASE);
    __atomic_store_n(&scanning, 0, __ATOMIC_RELEASE);
}

#else

void bm_rebind_check(void) {}

#endif
