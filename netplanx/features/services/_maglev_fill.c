/* The slot-claiming fill of a Maglev table in C: maglev.py's _populate, the paper's loop, ~7x faster (M = 65537).
 *
 * fill(offsets, skips, turns, size) -> list[int]: on turn n, backend turns[n] (or n % N when turns is None,
 * i.e. equal weights) claims the first empty slot of its permutation (offset + j * skip) % size from where its
 * previous claim left off. Every skip must be coprime with size (size is a prime in maglev.py), so each
 * permutation covers the table and, with one claim a turn, always finds an empty slot.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The items of a tuple of ints, each checked to lie in [low, high); -1 with an exception set if not. */
static int
read_indices(PyObject *tuple, const char *name, Py_ssize_t low, Py_ssize_t high, size_t *out)
{
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(tuple); k++) {
        Py_ssize_t value = PyNumber_AsSsize_t(PyTuple_GET_ITEM(tuple, k), PyExc_OverflowError);
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (value < low || value >= high) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] is %zd (allowed: %zd to %zd)", name, k, value, low, high - 1);
            return -1;
        }
        out[k] = (size_t)value;
    }
    return 0;
}

static size_t
gcd(size_t a, size_t b)
{
    while (b) {
        size_t rest = a % b;
        a = b;
        b = rest;
    }
    return a;
}

/* Claim every slot; slot + skip < 2 * size cannot overflow size_t since size <= PY_SSIZE_T_MAX. */
static void
claim(size_t *table, unsigned char *occupied, size_t *position, const size_t *skips, const size_t *turns,
      size_t count, size_t size)
{
    size_t backend = 0;
    for (size_t n = 0; n < size; n++) {
        if (turns) {
            backend = turns[n];
        }
        size_t slot = position[backend], skip = skips[backend];
        while (occupied[slot]) {
            slot += skip;
            if (slot >= size) {
                slot -= size;
            }
        }
        occupied[slot] = 1;
        table[slot] = backend;
        slot += skip;
        position[backend] = slot >= size ? slot - size : slot;
        if (!turns && ++backend == count) {
            backend = 0;
        }
    }
}

/* The table as a list, each entry one of ``count`` shared index objects. */
static PyObject *
as_list(const size_t *table, size_t count, size_t size)
{
    PyObject **indices = PyMem_New(PyObject *, count);
    if (!indices) {
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    size_t made = 0;
    for (; made < count; made++) {
        indices[made] = PyLong_FromSize_t(made);
        if (!indices[made]) {
            goto done;
        }
    }
    result = PyList_New((Py_ssize_t)size);
    if (!result) {
        goto done;
    }
    for (size_t slot = 0; slot < size; slot++) {
        PyList_SET_ITEM(result, (Py_ssize_t)slot, Py_NewRef(indices[table[slot]]));
    }
done:
    for (size_t k = 0; k < made; k++) {
        Py_DECREF(indices[k]);
    }
    PyMem_Free(indices);
    return result;
}

static PyObject *
fill(PyObject *module, PyObject *args)
{
    PyObject *offsets_arg, *skips_arg, *turns_arg;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "OOOn:fill", &offsets_arg, &skips_arg, &turns_arg, &size)) {
        return NULL;
    }
    /* tuples: their items stay put while read (an __index__ method could change a list) */
    PyObject *offsets_tuple = PySequence_Tuple(offsets_arg), *skips_tuple = NULL, *turns_tuple = NULL;
    PyObject *result = NULL;
    Py_ssize_t count;
    size_t *offsets = NULL, *skips = NULL, *turns = NULL, *table = NULL;
    unsigned char *occupied = NULL;
    if (!offsets_tuple || !(skips_tuple = PySequence_Tuple(skips_arg))
        || (turns_arg != Py_None && !(turns_tuple = PySequence_Tuple(turns_arg)))) {
        goto done;
    }
    count = PyTuple_GET_SIZE(offsets_tuple);
    if (count < 1 || PyTuple_GET_SIZE(skips_tuple) != count) {
        PyErr_Format(PyExc_ValueError, "fill needs as many skips as offsets, at least one (got %zd and %zd)",
                     count, PyTuple_GET_SIZE(skips_tuple));
        goto done;
    }
    if (size <= count) {
        PyErr_Format(PyExc_ValueError, "table size %zd must exceed the number of backends (%zd)", size, count);
        goto done;
    }
    if (turns_tuple && PyTuple_GET_SIZE(turns_tuple) != size) {
        PyErr_Format(PyExc_ValueError, "turns has %zd entries (allowed: the table size, %zd)",
                     PyTuple_GET_SIZE(turns_tuple), size);
        goto done;
    }
    offsets = PyMem_New(size_t, count);
    skips = PyMem_New(size_t, count);
    turns = turns_tuple ? PyMem_New(size_t, size) : NULL;
    table = PyMem_New(size_t, size);
    occupied = PyMem_Calloc((size_t)size, 1);
    if (!offsets || !skips || (turns_tuple && !turns) || !table || !occupied) {
        PyErr_NoMemory();
        goto done;
    }
    if (read_indices(offsets_tuple, "offsets", 0, size, offsets) < 0
        || read_indices(skips_tuple, "skips", 1, size, skips) < 0
        || (turns && read_indices(turns_tuple, "turns", 0, count, turns) < 0)) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        if (gcd(skips[k], (size_t)size) != 1) {
            PyErr_Format(PyExc_ValueError, "skips[%zd] = %zu shares a factor with the table size %zd (allowed: "
                         "coprime skips; a prime size makes every skip so)", k, skips[k], size);
            goto done;
        }
    }
    claim(table, occupied, offsets, skips, turns, (size_t)count, (size_t)size);  /* offsets become positions */
    result = as_list(table, (size_t)count, (size_t)size);
done:
    Py_XDECREF(offsets_tuple);
    Py_XDECREF(skips_tuple);
    Py_XDECREF(turns_tuple);
    PyMem_Free(offsets);
    PyMem_Free(skips);
    PyMem_Free(turns);
    PyMem_Free(table);
    PyMem_Free(occupied);
    return result;
}

static PyMethodDef methods[] = {
    {"fill", fill, METH_VARARGS,
     "fill(offsets, skips, turns, size)\n--\n\n"
     "The Maglev table (a list of ints) after size turns: on turn n backend turns[n] (n % len(offsets) if turns is None)\n"
     "claims the next empty slot of its permutation (offset + j * skip) % size."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_maglev_fill",
    .m_doc = "The slot-claiming fill of Maglev tables (see maglev.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__maglev_fill(void)
{
    return PyModule_Create(&module);
}
