/* pycni's launcher: the built-in module `_pycni_prefault`, for the warm process's spare child.
 *
 * A child forked from the warm process shares its pages copy-on-write: every page the call then
 * writes (a reference count, an allocation) is copied at a page fault, about a thousand of them
 * in a plugin call, most of a warm call's time. The spare child (cni/warm/spare.py) is forked
 * before a call arrives and copies those pages ahead: prefault(fd) walks its private writable
 * mappings (/proc/self/maps), and for the pages already present (mincore) asks the kernel to
 * populate them writable (MADV_POPULATE_WRITE, Linux 5.14), which breaks the sharing. Pages never
 * touched stay untouched: the child's memory is what the warm process holds, no more. It stops
 * as soon as fd is readable (a call was handed over, or the warm process is gone), so a spare
 * still copying costs a call nothing but what it already did. Returns the pages populated;
 * -1 when the kernel has no MADV_POPULATE_WRITE (the child then copies at its faults, as before).
 *
 * The launcher links no libpython: the API names used here are listed in pyapi.h's PYCNI_PYAPI.
 */
#ifndef PYCNI_PREFAULT_H
#define PYCNI_PREFAULT_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PREFAULT_CHUNK_PAGES 64 /* 256 KiB of 4 KiB pages (~0.1 ms) between two looks at fd */

/* Populate the present pages of [start, end); -1 when the kernel lacks the advice, -2 when fd
 * became readable, else the pages populated. */
static long prefault_range(unsigned long start, unsigned long end, long page, int fd)
{
    static unsigned char resident[PREFAULT_CHUNK_PAGES];
    struct pollfd stop = {.fd = fd, .events = POLLIN};
    long done = 0;

    for (unsigned long at = start; at < end; at += PREFAULT_CHUNK_PAGES * (unsigned long)page) {
        unsigned long len = end - at;
        size_t pages, i = 0;

        if (fd >= 0 && poll(&stop, 1, 0) != 0)
            return -2;
        if (len > PREFAULT_CHUNK_PAGES * (unsigned long)page)
            len = PREFAULT_CHUNK_PAGES * (unsigned long)page;
        pages = len / (unsigned long)page;
        if (mincore((void *)at, len, resident) != 0)
            return done; /* a mapping that changed under us: leave it */
        while (i < pages) {
            size_t j = i;
            if (!(resident[i] & 1)) {
                i++;
                continue;
            }
            while (j < pages && (resident[j] & 1))
                j++;
            if (madvise((void *)(at + i * (unsigned long)page), (j - i) * (unsigned long)page,
                        MADV_POPULATE_WRITE) == 0)
                done += (long)(j - i);
            else if (errno == EINVAL && done == 0 && at == start)
                return -1; /* no such advice here, or a mapping that cannot take it */
            i = j;
        }
    }
    return done;
}

static long prefault_private_pages(int fd)
{
    char line[512];
    long page = sysconf(_SC_PAGESIZE), total = 0;
    int whole = 1, supported = 0;
    FILE *maps = fopen("/proc/self/maps", "re");

    if (!maps)
        return 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        char perms[5];
        int start_of_line = whole;
        long got;

        whole = strchr(line, '\n') != NULL; /* a long path is read in pieces: only a line's start counts */
        if (!start_of_line || sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3)
            continue;
        if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' || strstr(line, "[v"))
            continue; /* private writable mappings only; never [vvar]/[vsyscall] */
        got = prefault_range(start, end, page, fd);
        if (got == -2)
            break;
        if (got >= 0) {
            supported = 1;
            total += got;
        }
    }
    fclose(maps);
    return supported ? total : -1;
}

static PyObject *prefault_call(PyObject *self, PyObject *arg)
{
    long fd = PyLong_AsLong(arg);

    (void)self;
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromLong(prefault_private_pages((int)fd));
}

static PyMethodDef prefault_methods[] = {
    {"prefault", prefault_call, METH_O,
     "prefault(fd): copy this process's shared private pages now; stop when fd is readable"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef prefault_module = {
    PyModuleDef_HEAD_INIT, "_pycni_prefault", "The warm spare's page copying (conf/prefault.h).", -1,
    prefault_methods, NULL, NULL, NULL, NULL,
};

static PyObject *PyInit__pycni_prefault(void)
{
    return PyModule_Create2(&prefault_module, PYTHON_API_VERSION);
}

#endif
