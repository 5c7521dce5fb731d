/* setns(2) for Python 3.11, which has no os.setns: a few lines of C instead of ctypes, whose
 * import and libc lookup would cost every plugin call that enters a network namespace. */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <sched.h>

static PyObject *
pycni_setns(PyObject *self, PyObject *args)
{
    int fd, nstype, rc;
    (void)self;
    if (!PyArg_ParseTuple(args, "ii:setns", &fd, &nstype))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = setns(fd, nstype);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setns", pycni_setns, METH_VARARGS, "setns(fd, nstype): move this thread into a namespace."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_setns", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__setns(void)
{
    return PyModule_Create(&module);
}
