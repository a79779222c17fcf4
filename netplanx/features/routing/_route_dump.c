/* The route read of routes.py in C: a dump's datagrams straight to route resources, for the common case of many
 * IPv4 routes that differ only in their destination (_decode_routes, the reference, explains the shapes).
 *
 * Reader(decode, shape_of, resource, shape) keeps the state of one dump: the shapes met so far and the previous
 * message's shape. decode(payload: bytes) is routes._decode (None: a route netx never manages), shape_of is
 * routes._shape_of, resource the Resource named tuple, shape the _Shape named tuple (fields checked).
 *
 * reader.feed(datagram, seq, routes) frames one datagram as NetlinkSocket.dump does (header =IHHII, messages
 * aligned to 4 bytes; it stops at a length below the header's, a message cut short is read as far as it goes)
 * and skips the messages of another sequence number. It returns True at NLMSG_DONE, (payload, flags) at
 * NLMSG_ERROR (netlink.dump_ended tells what it means), None when the datagram ends first. Every other message
 * is a route, appended to the list routes as _decode_routes would: an IPv4 route with RTA_DST right after
 * RTA_TABLE is built from its shape's model (decoded in Python once per shape: None skips the shape, False has
 * each route decoded in Python), any other route is decoded in Python. A route of a model is built without a
 * Python call: the model's attrs copied with their own "to", the address prefix + to + suffix, the model's
 * owned and its (shared, read-only) meta, in a Resource made as tuple.__new__(Resource, ...) makes it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define HEADER_SIZE 16            /* struct nlmsghdr */
#define NLMSG_ERROR 2
#define NLMSG_DONE 3
#define DST_AT 20                 /* routes.IPV4_DST_AT: rtmsg (12 bytes) and RTA_TABLE (8) */
#define HEAD_SIZE (DST_AT + 4)    /* a shape's bytes before the destination's four */
#define DST_END (DST_AT + 8)
#define RTA_DST 1
#define TEXT_MAX 512              /* an address built on the stack; longer ones (never seen) are joined */

static PyObject *to_key, *kind;   /* "to" and "route", interned */

/* A model that is a shape: its fields, borrowed from it (the texts' UTF-8 cached in their str objects). */
typedef struct {
    PyObject *model, *attrs, *owned, *meta, *prefix_text, *length_text, *suffix_text;
    const char *prefix, *length, *suffix;
    Py_ssize_t prefix_size, length_size, suffix_size;
} Shape;

typedef struct {
    PyObject_HEAD
    PyObject *decode, *shape_of;
    PyTypeObject *resource, *shape;
    PyObject *shapes;             /* shape bytes (head + tail) -> model: a shape, False or None */
    /* the previous message's shape and its model (NULL: no message yet, or the shape is being changed) */
    unsigned char head[HEAD_SIZE];
    unsigned char *tail;
    size_t tail_size, tail_capacity;
    PyObject *model;
    Shape fields;                 /* the model's, when it is a shape */
} Reader;

static const char *const RESOURCE_FIELDS[] = {"kind", "address", "attrs", "owned", "meta", NULL};
static const char *const SHAPE_FIELDS[] = {"attrs", "owned", "meta", "prefix", "length", "suffix", NULL};

/* 0 if ``type`` is a named tuple type with exactly these fields, in this order; -1 with TypeError if not. */
static int
check_fields(PyObject *type, const char *name, const char *const *fields)
{
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_Format(PyExc_TypeError, "%s must be a named tuple type", name);
        return -1;
    }
    PyObject *have = PyObject_GetAttrString(type, "_fields");
    if (!have) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();  /* not a named tuple: the TypeError below */
    }
    int same = have && PyTuple_Check(have);
    Py_ssize_t count = 0;
    for (; same && fields[count]; count++) {
        same = count < PyTuple_GET_SIZE(have) && PyUnicode_Check(PyTuple_GET_ITEM(have, count))
               && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(have, count), fields[count]) == 0;
    }
    same = same && PyTuple_GET_SIZE(have) == count;
    Py_XDECREF(have);
    if (!same) {
        PyErr_Format(PyExc_TypeError, "%s has other fields than _route_dump.c reads", name);
        return -1;
    }
    return 0;
}

static int
Reader_init(PyObject *object, PyObject *args, PyObject *kwargs)
{
    Reader *self = (Reader *)object;
    static char *keywords[] = {"decode", "shape_of", "resource", "shape", NULL};
    PyObject *decode, *shape_of, *resource, *shape;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:Reader", keywords, &decode, &shape_of, &resource,
                                     &shape)) {
        return -1;
    }
    if (!PyCallable_Check(decode) || !PyCallable_Check(shape_of)) {
        PyErr_SetString(PyExc_TypeError, "decode and shape_of must be callable");
        return -1;
    }
    if (check_fields(resource, "resource", RESOURCE_FIELDS) < 0 || check_fields(shape, "shape", SHAPE_FIELDS) < 0) {
        return -1;
    }
    PyObject *shapes = PyDict_New();
    if (!shapes) {
        return -1;
    }
    Py_XSETREF(self->decode, Py_NewRef(decode));
    Py_XSETREF(self->shape_of, Py_NewRef(shape_of));
    Py_XSETREF(self->resource, (PyTypeObject *)Py_NewRef(resource));
    Py_XSETREF(self->shape, (PyTypeObject *)Py_NewRef(shape));
    Py_XSETREF(self->shapes, shapes);
    Py_CLEAR(self->model);
    return 0;
}

static int
Reader_traverse(PyObject *object, visitproc visit, void *arg)
{
    Reader *self = (Reader *)object;
    Py_VISIT(self->decode);
    Py_VISIT(self->shape_of);
    Py_VISIT(self->resource);
    Py_VISIT(self->shape);
    Py_VISIT(self->shapes);
    Py_VISIT(self->model);
    return 0;
}

static int
Reader_clear(PyObject *object)
{
    Reader *self = (Reader *)object;
    Py_CLEAR(self->decode);
    Py_CLEAR(self->shape_of);
    Py_CLEAR(self->resource);
    Py_CLEAR(self->shape);
    Py_CLEAR(self->shapes);
    Py_CLEAR(self->model);
    return 0;
}

static void
Reader_dealloc(PyObject *object)
{
    PyObject_GC_UnTrack(object);
    Reader_clear(object);
    PyMem_Free(((Reader *)object)->tail);
    Py_TYPE(object)->tp_free(object);
}

/* The UTF-8 text of a model's str field; NULL with TypeError if it is not a str. */
static const char *
utf8_of(PyObject *text, Py_ssize_t *size)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "shape_of gave a shape whose prefix, length or suffix is not a str");
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(text, size);
}

/* Make ``model`` (a new reference) the current one; -1 with an exception set (the model released) if it is
 * neither None, False nor a shape whose attrs is a dict and whose texts are str. */
static int
set_model(Reader *self, PyObject *model)
{
    Py_XSETREF(self->model, model);
    if (model == Py_None || model == Py_False) {
        return 0;
    }
    if (!PyObject_TypeCheck(model, self->shape) || PyTuple_GET_SIZE(model) != 6
        || !PyDict_Check(PyTuple_GET_ITEM(model, 0))) {
        Py_CLEAR(self->model);
        PyErr_SetString(PyExc_TypeError, "shape_of must give None, False or a shape whose attrs is a dict");
        return -1;
    }
    Shape *f = &self->fields;
    f->model = model;
    f->attrs = PyTuple_GET_ITEM(model, 0);
    f->owned = PyTuple_GET_ITEM(model, 1);
    f->meta = PyTuple_GET_ITEM(model, 2);
    f->prefix_text = PyTuple_GET_ITEM(model, 3);
    f->length_text = PyTuple_GET_ITEM(model, 4);
    f->suffix_text = PyTuple_GET_ITEM(model, 5);
    if (!(f->prefix = utf8_of(f->prefix_text, &f->prefix_size))
        || !(f->length = utf8_of(f->length_text, &f->length_size))
        || !(f->suffix = utf8_of(f->suffix_text, &f->suffix_size))) {
        Py_CLEAR(self->model);
        return -1;
    }
    return 0;
}

/* Python's decode of one message, appended unless None; the decoded route itself (a new reference) if ``out``. */
static int
decode_one(Reader *self, const unsigned char *payload, size_t size, PyObject *routes, PyObject **out)
{
    PyObject *raw = PyBytes_FromStringAndSize((const char *)payload, (Py_ssize_t)size);
    if (!raw) {
        return -1;
    }
    PyObject *route = PyObject_CallOneArg(self->decode, raw);
    Py_DECREF(raw);
    if (!route) {
        return -1;
    }
    int failed = route != Py_None && PyList_Append(routes, route) < 0;
    if (out && !failed) {
        *out = route;
    }
    else {
        Py_DECREF(route);
    }
    return failed ? -1 : 0;
}

/* An IPv4 address as inet_ntop writes it ("%u.%u.%u.%u"; glibc's goes through sprintf, a third of the time
 * spent per route); its length. ``text`` has room for 15 characters. */
static size_t
ipv4_text(const unsigned char *address, char *text)
{
    char *at = text;
    for (int k = 0; k < 4; k++) {
        unsigned value = address[k];
        if (value >= 100) {
            *at++ = (char)('0' + value / 100);
        }
        if (value >= 10) {
            *at++ = (char)('0' + value / 10 % 10);
        }
        *at++ = (char)('0' + value % 10);
        if (k < 3) {
            *at++ = '.';
        }
    }
    return (size_t)(at - text);
}

/* A str of ``size`` bytes of UTF-8 (ASCII, the common case, copied without decoding). */
static PyObject *
text_of(const char *text, size_t size, int ascii)
{
    if (!ascii) {
        return PyUnicode_DecodeUTF8(text, (Py_ssize_t)size, "strict");
    }
    PyObject *result = PyUnicode_New((Py_ssize_t)size, 127);
    if (result) {
        memcpy(PyUnicode_DATA(result), text, size);
    }
    return result;
}

/* The "to" of a route of shape ``f``: its destination and the shape's "/LEN", also written to ``text`` (its size
 * in ``text_size``, 0 when it did not fit). */
static PyObject *
build_to(const Shape *f, const unsigned char *dst, char *text, size_t *text_size)
{
    char address[16];
    size_t size = ipv4_text(dst, address);
    if (size + (size_t)f->length_size > TEXT_MAX) {
        *text_size = 0;
        PyObject *head = PyUnicode_FromStringAndSize(address, (Py_ssize_t)size);
        PyObject *to = head ? PyUnicode_Concat(head, f->length_text) : NULL;
        Py_XDECREF(head);
        return to;
    }
    memcpy(text, address, size);
    memcpy(text + size, f->length, (size_t)f->length_size);
    *text_size = size + (size_t)f->length_size;
    return text_of(text, *text_size, PyUnicode_IS_ASCII(f->length_text));
}

/* A route of the current model (a shape) with the destination at ``dst`` (four bytes), appended to routes. The
 * model and the type are held meanwhile: an allocation may collect garbage, and a finalizer run Python code. */
static int
build_route(Reader *self, const unsigned char *dst, PyObject *routes)
{
    Shape f = self->fields;
    PyTypeObject *resource = self->resource;
    Py_INCREF(f.model);
    Py_INCREF(resource);
    char text[2 * TEXT_MAX];
    size_t to_size = 0;
    PyObject *to = build_to(&f, dst, text, &to_size), *address = NULL, *attrs = NULL, *route = NULL;
    int failed = -1;
    if (!to) {
        goto done;
    }
    if (to_size && (size_t)f.prefix_size + to_size + (size_t)f.suffix_size <= sizeof text) {
        memmove(text + f.prefix_size, text, to_size);
        memcpy(text, f.prefix, (size_t)f.prefix_size);
        memcpy(text + f.prefix_size + to_size, f.suffix, (size_t)f.suffix_size);
        address = text_of(text, (size_t)f.prefix_size + to_size + (size_t)f.suffix_size,
                          PyUnicode_IS_ASCII(f.length_text) && PyUnicode_IS_ASCII(f.prefix_text)
                          && PyUnicode_IS_ASCII(f.suffix_text));
    }
    else {
        PyObject *head = PyUnicode_Concat(f.prefix_text, to);
        address = head ? PyUnicode_Concat(head, f.suffix_text) : NULL;
        Py_XDECREF(head);
    }
    if (!address || !(attrs = PyDict_Copy(f.attrs)) || PyDict_SetItem(attrs, to_key, to) < 0
        || !(route = resource->tp_alloc(resource, 5))) {
        goto done;
    }
    PyTuple_SET_ITEM(route, 0, Py_NewRef(kind));
    PyTuple_SET_ITEM(route, 1, address);
    PyTuple_SET_ITEM(route, 2, attrs);
    PyTuple_SET_ITEM(route, 3, Py_NewRef(f.owned));
    PyTuple_SET_ITEM(route, 4, Py_NewRef(f.meta));
    address = attrs = NULL;  /* the route's now */
    failed = PyList_Append(routes, route);
done:
    Py_XDECREF(to);
    Py_XDECREF(address);
    Py_XDECREF(attrs);
    Py_XDECREF(route);
    Py_DECREF(f.model);
    Py_DECREF(resource);
    return failed;
}

/* One route message, as one turn of _decode_routes' loop. */
static int
read_route(Reader *self, const unsigned char *payload, size_t size, PyObject *routes)
{
    static const uint16_t dst_attr[2] = {8, RTA_DST};  /* routes.IPV4_DST: "=HH", native byte order */
    if (size == 0) {
        PyErr_SetString(PyExc_IndexError, "index out of range");  /* raw[0] */
        return -1;
    }
    if (payload[0] != AF_INET || size < HEAD_SIZE || memcmp(payload + DST_AT, dst_attr, 4) != 0) {
        return decode_one(self, payload, size, routes, NULL);
    }
    /* the bytes after the destination: none when the message ends before its four bytes do */
    size_t tail_size = size > DST_END ? size - DST_END : 0;
    if (!self->model || size != DST_END + self->tail_size || memcmp(payload, self->head, HEAD_SIZE) != 0
        || (tail_size && memcmp(payload + DST_END, self->tail, tail_size) != 0)) {
        if (tail_size > self->tail_capacity) {
            unsigned char *tail = PyMem_Realloc(self->tail, tail_size);
            if (!tail) {
                PyErr_NoMemory();
                return -1;
            }
            self->tail = tail;
            self->tail_capacity = tail_size;
        }
        Py_CLEAR(self->model);  /* the shape is being changed: no model until it is known */
        memcpy(self->head, payload, HEAD_SIZE);
        if (tail_size) {
            memcpy(self->tail, payload + DST_END, tail_size);
        }
        self->tail_size = tail_size;
        PyObject *key = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(HEAD_SIZE + tail_size));
        if (!key) {
            return -1;
        }
        memcpy(PyBytes_AS_STRING(key), payload, HEAD_SIZE);
        if (tail_size) {
            memcpy(PyBytes_AS_STRING(key) + HEAD_SIZE, payload + DST_END, tail_size);
        }
        PyObject *model = PyDict_GetItemWithError(self->shapes, key);
        if (model) {
            Py_DECREF(key);
            if (set_model(self, Py_NewRef(model)) < 0) {
                return -1;
            }
        }
        else {
            /* a new shape: its first route decoded in Python, which also gives the shape's model */
            PyObject *route = NULL;
            int failed = PyErr_Occurred() || decode_one(self, payload, size, routes, &route) < 0;
            if (!failed) {
                model = PyObject_CallOneArg(self->shape_of, route ? route : Py_None);
                failed = !model || set_model(self, model) < 0
                         || PyDict_SetItem(self->shapes, key, self->model) < 0;
            }
            Py_XDECREF(route);
            Py_DECREF(key);
            return failed ? -1 : 0;
        }
    }
    if (self->model == Py_None) {
        return 0;
    }
    if (self->model == Py_False) {
        return decode_one(self, payload, size, routes, NULL);
    }
    if (size < DST_END) {
        PyErr_SetString(PyExc_ValueError, "invalid length of packed IP address string");  /* inet_ntop's */
        return -1;
    }
    return build_route(self, payload + DST_AT + 4, routes);
}

static PyObject *
Reader_feed(PyObject *object, PyObject *args)
{
    Reader *self = (Reader *)object;
    Py_buffer data;
    unsigned long seq;
    PyObject *routes, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*kO!:feed", &data, &seq, &PyList_Type, &routes)) {
        return NULL;
    }
    if (!self->shapes) {
        PyErr_SetString(PyExc_ValueError, "Reader.__init__ was not called");
        goto done;
    }
    const unsigned char *bytes = data.buf;
    size_t offset = 0, end = (size_t)data.len;
    while (offset + HEADER_SIZE <= end) {
        uint32_t length, mseq;
        uint16_t mtype, flags;
        memcpy(&length, bytes + offset, 4);
        memcpy(&mtype, bytes + offset + 4, 2);
        memcpy(&flags, bytes + offset + 6, 2);
        memcpy(&mseq, bytes + offset + 8, 4);
        if (length < HEADER_SIZE) {
            break;
        }
        /* a message longer than what is left is read as far as the datagram goes (a memoryview's slice) */
        size_t stop = end - offset < length ? end : offset + length;
        const unsigned char *payload = bytes + offset + HEADER_SIZE;
        size_t size = stop - offset - HEADER_SIZE;
        if (mseq == seq) {
            if (mtype == NLMSG_DONE) {
                result = Py_NewRef(Py_True);
                goto done;
            }
            if (mtype == NLMSG_ERROR) {
                result = Py_BuildValue("(y#H)", (const char *)payload, (Py_ssize_t)size, flags);
                goto done;
            }
            if (read_route(self, payload, size, routes) < 0) {
                goto done;
            }
        }
        offset += ((size_t)length + 3) & ~(size_t)3;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef Reader_methods[] = {
    {"feed", Reader_feed, METH_VARARGS,
     "feed(datagram, seq, routes)\n--\n\n"
     "Append the routes of the messages of sequence seq in one datagram to the list routes; True at the end of\n"
     "the dump, (payload, flags) at an error (netlink.dump_ended), None when the datagram ends first."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netplanx.features.routing._route_dump.Reader",
    .tp_doc = PyDoc_STR("Reader(decode, shape_of, resource, shape): the routes of one dump, datagram by datagram."),
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = Reader_init,
    .tp_dealloc = Reader_dealloc,
    .tp_traverse = Reader_traverse,
    .tp_clear = Reader_clear,
    .tp_methods = Reader_methods,
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_route_dump",
    .m_doc = "The route read of a dump's datagrams (see routes.py's _decode_routes).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__route_dump(void)
{
    if (PyType_Ready(&ReaderType) < 0) {
        return NULL;
    }
    if (!to_key && !(to_key = PyUnicode_InternFromString("to"))) {
        return NULL;
    }
    if (!kind && !(kind = PyUnicode_InternFromString("route"))) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (!m) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
