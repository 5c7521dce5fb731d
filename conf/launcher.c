/* pycni's launcher: start the bundle's own interpreter straight on its modules.
 *
 * PyInstaller collects the bundle (dist/pycni/_internal: libpython, the standard library and
 * our modules as loose .pyc files, the extension modules); this program replaces its bootloader
 * as dist/pycni/pycni. Every CNI call is a new process, and the bootloader's start costs
 * milliseconds this one does not spend: it executes itself a second time to set
 * LD_LIBRARY_PATH, and its Python bootstrap imports struct, zlib and its own modules and lists
 * the bundle before any of our code runs. Here libpython is found through the $ORIGIN rpath,
 * sys.path is preset to the bundle, and nothing is imported but what the interpreter itself
 * needs and then PYCNI_MODULE, whose entry(sys.argv) returns the exit status.
 *
 * The libraries PyInstaller collected beside libpython (libssl, libz, ...) serve extension
 * modules only the operator command loads (grpc, ssl). Those need LD_LIBRARY_PATH set before
 * the process starts, so a call under a name that is not a plugin type (`pycni status`) runs
 * this program once more with it set, as PyInstaller's bootloader does on every call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PYCNI_MODULE
#define PYCNI_MODULE "cni.__main__"
#endif
/* Space-separated names that take the fast path: the plugin types (build.sh passes them). */
#ifndef PYCNI_FAST_NAMES
#define PYCNI_FAST_NAMES ""
#endif
#define RESTARTED "_PYCNI_LAUNCHER_RESTARTED"

/* The modules a plugin call loads, frozen into this executable by conf/freeze.py (build.sh
 * passes -DPYCNI_FROZEN=<file>): the interpreter unmarshals them from here instead of finding,
 * opening and reading each .pyc, and falls back to _internal for anything else. */
#ifdef PYCNI_FROZEN
#include PYCNI_FROZEN
#endif

/* s as the inside of a JSON string: quotes, backslashes and control characters escaped. */
static void put_json_text(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
}

static void die(const char *what, const char *detail)
{
    /* The CNI error shape, so a runtime shows the reason instead of a bare failure. */
    printf("{\"cniVersion\":\"1.1.0\",\"code\":999,\"msg\":\"pycni launcher: ");
    put_json_text(what);
    printf("\",\"details\":\"");
    put_json_text(detail ? detail : "");
    printf("\"}\n");
    fflush(stdout);
    _exit(1);
}

static int fast_name(const char *argv0)
{
    const char *base = strrchr(argv0, '/');
    size_t n;
    const char *p = PYCNI_FAST_NAMES;

    base = base ? base + 1 : argv0;
    n = strlen(base);
    while (*p) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, base, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Run ourselves again with the bundle's library directory first in LD_LIBRARY_PATH; the
 * value the caller had is kept in LD_LIBRARY_PATH_ORIG, as PyInstaller's bootloader keeps it,
 * so cni.childenv gives children the caller's environment back. */
static void restart_with_libraries(const char *exe, const char *internal, char **argv)
{
    const char *old = getenv("LD_LIBRARY_PATH");
    size_t len = strlen(internal) + (old ? strlen(old) + 1 : 0) + 1;
    char *value = malloc(len);

    if (!value)
        die("out of memory", NULL);
    snprintf(value, len, "%s%s%s", internal, old ? ":" : "", old ? old : "");
    setenv("LD_LIBRARY_PATH", value, 1);
    setenv(RESTARTED, "1", 1);
    execv(exe, argv);
    die("cannot run itself again", strerror(errno));
}

static void check(PyStatus status)
{
    if (PyStatus_Exception(status)) {
        if (PyStatus_IsExit(status))
            _exit(status.exitcode);
        die("cannot start the interpreter", status.err_msg);
    }
}

static wchar_t *wide(const char *s)
{
    wchar_t *w = Py_DecodeLocale(s, NULL);
    if (!w)
        die("cannot decode", s);
    return w;
}

static void flush_std(void)
{
    PyObject *f;
    const char *names[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        f = PySys_GetObject(names[i]);
        if (f && f != Py_None) {
            PyObject *r = PyObject_CallMethod(f, "flush", NULL);
            if (r)
                Py_DECREF(r);
            else
                PyErr_Clear();
        }
    }
}

#ifdef PYCNI_FROZEN
/* A frozen package's __path__ is its folder under sys._stdlib_dir, so modules that were not
 * frozen (the operator command's, other codecs) are still found in the bundle. The interpreter
 * leaves _stdlib_dir unset under a preset search path: set it to the bundle's folder, and give
 * the packages imported while starting (encodings) the folder they would have had. */
static void place_frozen_packages(const char *internal)
{
    PyObject *dir = PyUnicode_DecodeFSDefault(internal);
    PyObject *modules = PyImport_GetModuleDict();
    const struct _frozen *p;

    if (!dir || PySys_SetObject("_stdlib_dir", dir) < 0)
        die("cannot set sys._stdlib_dir", internal);
    for (p = pycni_frozen; p->name; p++) {
        PyObject *module, *path, *folder;
        /* only top-level packages are imported before this point */
        if (!p->is_package || strchr(p->name, '.') || !(module = PyDict_GetItemString(modules, p->name)))
            continue;
        path = PyObject_GetAttrString(module, "__path__");
        if (path && PyList_Check(path) && PyList_GET_SIZE(path) == 0) {
            folder = PyUnicode_FromFormat("%U/%s", dir, p->name);
            if (!folder || PyList_Append(path, folder) < 0)
                die("cannot place a frozen package", p->name);
            Py_DECREF(folder);
        }
        Py_XDECREF(path);
        PyErr_Clear();
    }
    Py_DECREF(dir);
}
#endif

int main(int argc, char **argv)
{
    char exe[PATH_MAX], internal[PATH_MAX], dynload[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash;
    PyPreConfig pre;
    PyConfig config;
    PyObject *module, *entry, *args, *result;
    long code = 1;

    if (n <= 0)
        die("cannot find its own executable", strerror(errno));
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (!slash)
        die("cannot find its own directory", exe);
    if (snprintf(internal, sizeof internal, "%.*s/_internal", (int)(slash - exe), exe)
            >= (int)sizeof internal
        || snprintf(dynload, sizeof dynload, "%.*s/_internal/python%d.%d/lib-dynload", (int)(slash - exe),
                    exe, PY_MAJOR_VERSION, PY_MINOR_VERSION)
            >= (int)sizeof dynload)
        die("path too long", exe);

    /* cni.childenv hands LD_LIBRARY_PATH_ORIG to children as the caller's LD_LIBRARY_PATH. */
    if (getenv("LD_LIBRARY_PATH") && !getenv(RESTARTED))
        setenv("LD_LIBRARY_PATH_ORIG", getenv("LD_LIBRARY_PATH"), 1);
    if (argc > 0 && !fast_name(argv[0]) && !getenv(RESTARTED))
        restart_with_libraries(exe, internal, argv);
    if (getenv(RESTARTED))
        unsetenv(RESTARTED);

#ifdef PYCNI_FROZEN
    PyImport_FrozenModules = pycni_frozen;
#endif
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1;
    check(Py_PreInitialize(&pre));

    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.write_bytecode = 0;
    config.optimization_level = 2;
    config.parse_argv = 0;
    config.install_signal_handlers = 1;
    config.module_search_paths_set = 1;
    check(PyWideStringList_Append(&config.module_search_paths, wide(internal)));
    check(PyWideStringList_Append(&config.module_search_paths, wide(dynload)));
    check(PyConfig_SetBytesString(&config, &config.home, internal));
    check(PyConfig_SetBytesString(&config, &config.executable, exe));
    check(PyConfig_SetBytesString(&config, &config.program_name, exe));
    check(PyConfig_SetBytesArgv(&config, argc, argv));
    check(Py_InitializeFromConfig(&config));
    PyConfig_Clear(&config);

    /* What PyInstaller's bootstrap would have set: code finds the bundle's data through them. */
    PySys_SetObject("frozen", Py_True);
    {
        PyObject *meipass = PyUnicode_DecodeFSDefault(internal);
        if (meipass) {
            PySys_SetObject("_MEIPASS", meipass);
            Py_DECREF(meipass);
        }
    }

#ifdef PYCNI_FROZEN
    place_frozen_packages(internal);
#endif
    module = PyImport_ImportModule(PYCNI_MODULE);
    entry = module ? PyObject_GetAttrString(module, "entry") : NULL;
    args = entry ? PySys_GetObject("argv") : NULL;
    result = args ? PyObject_CallOneArg(entry, args) : NULL;
    if (result) {
        code = PyLong_AsLong(result);
        if (code == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            code = 1;
        }
        Py_DECREF(result);
    } else {
        /* SystemExit (argparse's --help, sys.exit) exits here with its status; anything else
         * is printed as a traceback and the status is 1. */
        PyErr_Print();
        code = 1;
    }
    /* Skip the interpreter's teardown, as cni/__main__.py does: the answer is written and
     * flushed, files are closed by the kernel and flocks released with them. */
    flush_std();
    _exit((int)code);
}
