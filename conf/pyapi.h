/* pycni's launcher: the CPython API, resolved only when the call runs cold.
 *
 * A warm call (warm.h) never runs Python in the launcher, yet an executable linked against
 * libpython has the dynamic loader map and relocate it on every exec (~1 ms, most of a warm
 * call). So the launcher is linked against libc alone, and the cold path dlopen()s the bundle's
 * libpython itself: RTLD_NOW does the relocation the loader did, RTLD_GLOBAL lets the extension
 * modules loaded later resolve their Py symbols against it, as they did against the loader's.
 *
 * Every API name the launcher uses is listed once in PYCNI_PYAPI; pycni_py holds a pointer per
 * name, and each name is then redefined as that pointer dereferenced, so the code below calls
 * PyConfig_Clear(...) or reads Py_None as it would against the linked library. Functions and
 * data symbols (_Py_NoneStruct, PyExc_ImportError, PyImport_FrozenModules) alike: the pointer to
 * a data symbol dereferenced is the variable itself. Header inline functions reference
 * _Py_Dealloc (Py_DECREF) by its real name: it is defined here as a forwarder. Linking without
 * -lpython makes the linker name any API symbol missing from the list.
 */
#ifndef PYCNI_PYAPI_H
#define PYCNI_PYAPI_H

/* The bundle's libpython under _internal (build.sh passes sysconfig's INSTSONAME). */
#ifndef PYCNI_LIBPYTHON
#define PYCNI_LIBPYTHON "libpython" Py_STRINGIFY(PY_MAJOR_VERSION) "." Py_STRINGIFY(PY_MINOR_VERSION) ".so.1.0"
#endif

#define PYCNI_PYAPI(X)                                                                             \
    X(PyConfig_Clear)                                                                              \
    X(PyConfig_InitIsolatedConfig)                                                                 \
    X(PyConfig_SetBytesArgv)                                                                       \
    X(PyConfig_SetBytesString)                                                                     \
    X(PyDict_GetItemString)                                                                        \
    X(PyErr_Clear)                                                                                 \
    X(PyErr_Format)                                                                                \
    X(PyErr_Occurred)                                                                              \
    X(PyErr_Print)                                                                                 \
    X(PyErr_SetImportError)                                                                        \
    X(PyErr_SetString)                                                                             \
    X(PyExc_ImportError)                                                                           \
    X(PyGC_Disable)                                                                                \
    X(PyImport_AppendInittab)                                                                      \
    X(PyImport_ExtendInittab)                                                                      \
    X(PyImport_FrozenModules)                                                                      \
    X(PyImport_GetModuleDict)                                                                      \
    X(PyImport_ImportModule)                                                                       \
    X(PyList_Append)                                                                               \
    X(PyLong_AsLong)                                                                               \
    X(PyLong_FromLong)                                                                             \
    X(PyModule_Create2)                                                                            \
    X(PyObject_CallOneArg)                                                                         \
    X(PyObject_GetAttrString)                                                                      \
    X(PyPreConfig_InitIsolatedConfig)                                                              \
    X(PyStatus_Exception)                                                                          \
    X(PyStatus_IsExit)                                                                             \
    X(PySys_GetObject)                                                                             \
    X(PySys_SetObject)                                                                             \
    X(PyUnicode_DecodeFSDefault)                                                                   \
    X(PyUnicode_FromFormat)                                                                        \
    X(PyUnicode_FromString)                                                                        \
    X(PyWideStringList_Append)                                                                     \
    X(Py_DecodeLocale)                                                                             \
    X(Py_InitializeFromConfig)                                                                     \
    X(Py_PreInitialize)                                                                            \
    X(_PyObject_CallMethod_SizeT)                                                                  \
    X(_Py_Dealloc)                                                                                 \
    X(_Py_NoneStruct)                                                                              \
    X(_Py_TrueStruct)

#define PYCNI_PYAPI_FIELD(name) __typeof__(name) *name;
static struct {
    PYCNI_PYAPI(PYCNI_PYAPI_FIELD)
} pycni_py;
#undef PYCNI_PYAPI_FIELD

/* Load libpython from the bundle (internal: its _internal folder) and resolve the API; NULL
 * when done, else what failed (dlerror's text), for the launcher's CNI error. */
static const char *pycni_load_python(const char *internal)
{
    char path[PATH_MAX];
    void *lib;

    if (snprintf(path, sizeof path, "%s/%s", internal, PYCNI_LIBPYTHON) >= (int)sizeof path)
        return "path too long";
    lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!lib)
        return dlerror();
#define PYCNI_PYAPI_RESOLVE(name)                                                                  \
    if (!(pycni_py.name = (__typeof__(pycni_py.name))dlsym(lib, #name)))                          \
        return dlerror();
    PYCNI_PYAPI(PYCNI_PYAPI_RESOLVE)
#undef PYCNI_PYAPI_RESOLVE
    return NULL;
}

/* Py_DECREF's deallocation, which the header's inline code calls by name. */
void _Py_Dealloc(PyObject *op)
{
    pycni_py._Py_Dealloc(op);
}

/* From here on each API name is its resolved pointer (kept in the order of PYCNI_PYAPI). */
#define PyConfig_Clear (*pycni_py.PyConfig_Clear)
#define PyConfig_InitIsolatedConfig (*pycni_py.PyConfig_InitIsolatedConfig)
#define PyConfig_SetBytesArgv (*pycni_py.PyConfig_SetBytesArgv)
#define PyConfig_SetBytesString (*pycni_py.PyConfig_SetBytesString)
#define PyDict_GetItemString (*pycni_py.PyDict_GetItemString)
#define PyErr_Clear (*pycni_py.PyErr_Clear)
#define PyErr_Format (*pycni_py.PyErr_Format)
#define PyErr_Occurred (*pycni_py.PyErr_Occurred)
#define PyErr_Print (*pycni_py.PyErr_Print)
#define PyErr_SetImportError (*pycni_py.PyErr_SetImportError)
#define PyErr_SetString (*pycni_py.PyErr_SetString)
#define PyExc_ImportError (*pycni_py.PyExc_ImportError)
#define PyGC_Disable (*pycni_py.PyGC_Disable)
#define PyImport_AppendInittab (*pycni_py.PyImport_AppendInittab)
#define PyImport_ExtendInittab (*pycni_py.PyImport_ExtendInittab)
#define PyImport_FrozenModules (*pycni_py.PyImport_FrozenModules)
#define PyImport_GetModuleDict (*pycni_py.PyImport_GetModuleDict)
#define PyImport_ImportModule (*pycni_py.PyImport_ImportModule)
#define PyList_Append (*pycni_py.PyList_Append)
#define PyLong_AsLong (*pycni_py.PyLong_AsLong)
#define PyLong_FromLong (*pycni_py.PyLong_FromLong)
#define PyModule_Create2 (*pycni_py.PyModule_Create2)
#define PyObject_CallOneArg (*pycni_py.PyObject_CallOneArg)
#define PyObject_GetAttrString (*pycni_py.PyObject_GetAttrString)
#define PyPreConfig_InitIsolatedConfig (*pycni_py.PyPreConfig_InitIsolatedConfig)
#define PyStatus_Exception (*pycni_py.PyStatus_Exception)
#define PyStatus_IsExit (*pycni_py.PyStatus_IsExit)
#define PySys_GetObject (*pycni_py.PySys_GetObject)
#define PySys_SetObject (*pycni_py.PySys_SetObject)
#define PyUnicode_DecodeFSDefault (*pycni_py.PyUnicode_DecodeFSDefault)
#define PyUnicode_FromFormat (*pycni_py.PyUnicode_FromFormat)
#define PyUnicode_FromString (*pycni_py.PyUnicode_FromString)
#define PyWideStringList_Append (*pycni_py.PyWideStringList_Append)
#define Py_DecodeLocale (*pycni_py.Py_DecodeLocale)
#define Py_InitializeFromConfig (*pycni_py.Py_InitializeFromConfig)
#define Py_PreInitialize (*pycni_py.Py_PreInitialize)
#define _PyObject_CallMethod_SizeT (*pycni_py._PyObject_CallMethod_SizeT)
#define _Py_NoneStruct (*pycni_py._Py_NoneStruct)
#define _Py_TrueStruct (*pycni_py._Py_TrueStruct)

#endif
