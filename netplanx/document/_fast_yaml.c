/* The fast path of loader.py's load_document: libyaml's events straight to dicts, lists and scalars, without
 * the node tree ruamel.yaml composes (a Python object per YAML node, walked again to build the data).
 *
 * load(text, resolve, max_depth, max_nodes) -> the data, built as loader._Builder builds it from ruamel's tree:
 * mapping keys are their text, quoted and block scalars text, plain scalars resolve(text) (called once per
 * distinct text; equal values share one object). It raises Unsupported for anything else, which the ruamel path
 * then loads or reports at its position: anchors, aliases, tags (even the non-specific '!'), merge keys (a plain
 * '<<' key), duplicate or non-scalar keys, nesting deeper than max_depth, more than max_nodes values, no
 * document or more than one, and any parse error. resolve raises Unsupported itself where ruamel's constructor
 * has to read a scalar.
 *
 * ruamel.yaml.clib parses with its own copy of libyaml (it says 0.1.7), which lacks two changes of the system's
 * 0.2.5: inside [ ] or { } it reads a tag up to the next blank, and ends a plain scalar at ':' or '?' (an error
 * at "x:y") where 0.2.5 reads on ("[fd00::1/64]", "[a?b]"). So a tag, or a plain scalar holding ':' or '?'
 * inside a flow collection, is Unsupported too. The copies differ otherwise only in warnings, const and one
 * fix of a read past the buffer (a quoted scalar's escaped CRLF line break at the end of a buffer refill).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <yaml.h>

static PyObject *Unsupported;

typedef struct {
    yaml_parser_t parser;
    yaml_event_t event;  /* the event being read; zeroed (YAML_NO_EVENT) once deleted */
    PyObject *resolve;
    PyObject *plain;     /* plain scalar text -> its value */
    long max_depth;
    Py_ssize_t max_nodes, nodes;
    int flow;            /* how many flow collections (inside [ ] or { }) the event is in */
} Reader;

static void *
unsupported(const char *what)
{
    PyErr_SetString(Unsupported, what);
    return NULL;
}

/* The next event in r->event; 0 with Unsupported set on a parse error. */
static int
next_event(Reader *r)
{
    yaml_event_delete(&r->event);
    if (!yaml_parser_parse(&r->parser, &r->event)) {
        unsupported("a YAML error");
        return 0;
    }
    return 1;
}

static int
next_is(Reader *r, yaml_event_type_t type, const char *otherwise)
{
    if (!next_event(r)) {
        return 0;
    }
    if (r->event.type != type) {
        unsupported(otherwise);
        return 0;
    }
    return 1;
}

/* The text of a scalar event, or NULL with Unsupported set for an anchor, a tag or a plain scalar that
 * ruamel's libyaml reads differently (see the top). */
static PyObject *
scalar_text(Reader *r)
{
    const yaml_event_t *event = &r->event;
    if (event->data.scalar.anchor || event->data.scalar.tag) {
        return unsupported("an anchor or a tag");
    }
    const char *value = (const char *)event->data.scalar.value;
    size_t length = event->data.scalar.length;
    if (r->flow && event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
        && (memchr(value, ':', length) || memchr(value, '?', length))) {
        return unsupported("a plain scalar with ':' or '?' inside [ ] or { }");
    }
    return PyUnicode_DecodeUTF8(value, (Py_ssize_t)length, "strict");
}

/* A scalar's value: its text, resolved when plain (implicit[0] in ruamel's resolve). */
static PyObject *
scalar(Reader *r)
{
    PyObject *text = scalar_text(r);
    if (!text || !r->event.data.scalar.plain_implicit) {
        return text;
    }
    PyObject *value = PyDict_GetItemWithError(r->plain, text);
    if (value) {
        Py_INCREF(value);
    }
    else if (!PyErr_Occurred()) {
        value = PyObject_CallOneArg(r->resolve, text);
        if (value && PyDict_SetItem(r->plain, text, value) < 0) {
            Py_CLEAR(value);
        }
    }
    Py_DECREF(text);
    return value;
}

static PyObject *node(Reader *r, long depth);

static PyObject *
sequence(Reader *r, long depth)
{
    if (r->event.data.sequence_start.anchor || r->event.data.sequence_start.tag) {
        return unsupported("an anchor or a tag");
    }
    int flow = r->event.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
    PyObject *list = PyList_New(0);
    if (!list) {
        return NULL;
    }
    r->flow += flow;
    while (next_event(r)) {
        if (r->event.type == YAML_SEQUENCE_END_EVENT) {
            r->flow -= flow;
            return list;
        }
        PyObject *item = node(r, depth + 1);
        if (!item) {
            break;
        }
        int failed = PyList_Append(list, item);
        Py_DECREF(item);
        if (failed) {
            break;
        }
    }
    Py_DECREF(list);
    return NULL;
}

/* The next key of a mapping, not yet in ``dict``; NULL with an exception set if it is not a plain text key. */
static PyObject *
mapping_key(Reader *r, PyObject *dict)
{
    if (r->event.type != YAML_SCALAR_EVENT) {
        return unsupported("a key that is not a scalar");
    }
    PyObject *key = scalar_text(r);
    if (!key) {
        return NULL;
    }
    int known = PyDict_Contains(dict, key);
    if (known == 0 && !(r->event.data.scalar.plain_implicit && PyUnicode_CompareWithASCIIString(key, "<<") == 0)) {
        return key;
    }
    Py_DECREF(key);
    return known < 0 ? NULL : unsupported(known ? "a duplicate key" : "a merge key");
}

static PyObject *
mapping(Reader *r, long depth)
{
    if (r->event.data.mapping_start.anchor || r->event.data.mapping_start.tag) {
        return unsupported("an anchor or a tag");
    }
    int flow = r->event.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
    PyObject *dict = PyDict_New();
    if (!dict) {
        return NULL;
    }
    r->flow += flow;
    while (next_event(r)) {
        if (r->event.type == YAML_MAPPING_END_EVENT) {
            r->flow -= flow;
            return dict;
        }
        PyObject *key = mapping_key(r, dict);
        int failed = !key || !next_event(r);
        if (!failed) {
            PyObject *value = node(r, depth + 1);
            failed = !value || PyDict_SetItem(dict, key, value) < 0;
            Py_XDECREF(value);
        }
        Py_XDECREF(key);
        if (failed) {
            break;
        }
    }
    Py_DECREF(dict);
    return NULL;
}

/* The value the event starts, counted and at ``depth`` as loader._Builder.build counts them. */
static PyObject *
node(Reader *r, long depth)
{
    if (++r->nodes > r->max_nodes || depth > r->max_depth) {
        return unsupported("too many values or too deep");
    }
    switch (r->event.type) {
    case YAML_SCALAR_EVENT:
        return scalar(r);
    case YAML_SEQUENCE_START_EVENT:
        return sequence(r, depth);
    case YAML_MAPPING_START_EVENT:
        return mapping(r, depth);
    default:
        return unsupported("an alias");
    }
}

static PyObject *
load(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text;
    Reader r = {.nodes = 0, .flow = 0};
    if (!PyArg_ParseTuple(args, "UOln:load", &text, &r.resolve, &r.max_depth, &r.max_nodes)) {
        return NULL;
    }
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (!utf8) {
        PyErr_Clear();
        return unsupported("text that is not UTF-8");  /* lone surrogates: ruamel raises what it raises */
    }
    if (!(r.plain = PyDict_New())) {
        return NULL;
    }
    if (!yaml_parser_initialize(&r.parser)) {
        Py_DECREF(r.plain);
        return PyErr_NoMemory();
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)utf8, (size_t)size);
    PyObject *data = NULL;
    if (next_is(&r, YAML_STREAM_START_EVENT, "no stream") && next_is(&r, YAML_DOCUMENT_START_EVENT, "no document")
        && next_event(&r)) {
        data = node(&r, 0);
    }
    if (data && !(next_is(&r, YAML_DOCUMENT_END_EVENT, "no document end")
                  && next_is(&r, YAML_STREAM_END_EVENT, "more than one document"))) {
        Py_CLEAR(data);
    }
    yaml_event_delete(&r.event);
    yaml_parser_delete(&r.parser);
    Py_DECREF(r.plain);
    return data;
}

static PyMethodDef methods[] = {
    {"load", load, METH_VARARGS,
     "load(text, resolve, max_depth, max_nodes)\n--\n\n"
     "The data of a one-document YAML text: mappings as dicts (text keys), sequences as lists, plain scalars as\n"
     "resolve(text), other scalars as text. Raises Unsupported where loader.py's ruamel path must load it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_fast_yaml",
    .m_doc = "YAML to plain data straight from libyaml's events (the fast path of loader.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__fast_yaml(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m) {
        return NULL;
    }
    Unsupported = PyErr_NewExceptionWithDoc("netplanx.document._fast_yaml.Unsupported",
                                            "The document needs loader.py's ruamel path.", NULL, NULL);
    if (PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
