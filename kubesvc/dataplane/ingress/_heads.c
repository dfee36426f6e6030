/* The ingress router's answer-head transform, compiled (optional: built by setup.py when a C compiler is there).
 *
 * answer(data, head_end, status_lines, server_line) is kubesvc.dataplane.ingress.upstream.answer_py in C: the same
 * result for every head llhttp accepts (tests/dataplane/test_ingress_heads.py compares them), or None. It checks
 * nothing llhttp checks: the caller runs the answer through llhttp before it uses the result. Without this module
 * the router takes its parsed path, which writes the same bytes (see upstream.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int lower_eq(const char *p, Py_ssize_t n, const char *name, Py_ssize_t m) {
    if (n != m) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != name[i]) return 0;
    }
    return 1;
}

static const char *find_crlf(const char *p, const char *end) {
    while (p + 1 < end) {
        const char *r = memchr(p, '\r', (size_t)(end - p - 1));
        if (r == NULL) return end;
        if (r[1] == '\n') return r;
        p = r + 1;
    }
    return end;
}

static PyObject *answer(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyDict_Check(args[2]) || !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "answer(data: bytes, head_end: int, status_lines: dict, server_line: bytes)");
        return NULL;
    }
    Py_ssize_t head_end = PyLong_AsSsize_t(args[1]);
    if (head_end == -1 && PyErr_Occurred()) return NULL;
    const char *d = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (head_end < 16 || head_end > size || memcmp(d, "HTTP/1.1 ", 9) != 0) Py_RETURN_NONE;
    if (d[9] < '0' || d[9] > '9' || d[10] < '0' || d[10] > '9' || d[11] < '0' || d[11] > '9') Py_RETURN_NONE;
    int status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    if (status < 200 || status >= 600 || status == 204 || status == 304) Py_RETURN_NONE;
    const char *end = d + head_end - 4; /* the header lines end here (the blank line follows) */
    const char *p = find_crlf(d, end);  /* the status line's CRLF */
    const char *clen = NULL, *clen_end = NULL;
    int has_server = 0, has_connection = 0, has_keep_alive = 0;
    char small[1024];
    char *buf = small;
    Py_ssize_t cap = sizeof small, len = 0;
    PyObject *result = NULL;
    while (p < end) {
        const char *s = p + 2; /* the line after this CRLF */
        const char *e = find_crlf(s, end);
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon == NULL) goto none;
        /* canonical: "Name: value", one space, the value not starting with a blank (or empty) */
        if (colon + 1 >= e || colon[1] != ' ') goto none;
        if (colon + 2 < e && (colon[2] == ' ' || colon[2] == '\t')) goto none;
        const char *v = colon + 2;
        Py_ssize_t nl = colon - s;
        if (lower_eq(s, nl, "content-length", 14)) {
            if (clen != NULL || v >= e) goto none;
            for (const char *q = v; q < e; q++)
                if (*q < '0' || *q > '9') goto none;
            clen = v;
            clen_end = e;
        } else if (lower_eq(s, nl, "connection", 10)) {
            if (has_connection || !lower_eq(v, e - v, "keep-alive", 10)) goto none;
            has_connection = 1;
        } else if (lower_eq(s, nl, "keep-alive", 10)) {
            if (has_keep_alive) goto none;
            has_keep_alive = 1;
        } else if (lower_eq(s, nl, "te", 2) || lower_eq(s, nl, "trailer", 7) || lower_eq(s, nl, "transfer-encoding", 17)
                   || lower_eq(s, nl, "upgrade", 7) || lower_eq(s, nl, "proxy-connection", 16)) {
            goto none;
        } else {
            if (lower_eq(s, nl, "server", 6)) has_server = 1;
            Py_ssize_t n = e - s;
            if (len + n + 2 > cap) {
                Py_ssize_t ncap = (len + n + 2) * 2;
                char *nb = buf == small ? PyMem_Malloc((size_t)ncap) : PyMem_Realloc(buf, (size_t)ncap);
                if (nb == NULL) {
                    PyErr_NoMemory();
                    goto out;
                }
                if (buf == small) memcpy(nb, small, (size_t)len);
                buf = nb;
                cap = ncap;
            }
            memcpy(buf + len, s, (size_t)n);
            buf[len + n] = '\r';
            buf[len + n + 1] = '\n';
            len += n + 2;
        }
        p = e;
    }
    if (clen == NULL) goto none;
    {
        const char *server = PyBytes_AS_STRING(args[3]);
        Py_ssize_t server_len = has_server ? 0 : PyBytes_GET_SIZE(args[3]);
        PyObject *lines = PyBytes_FromStringAndSize(NULL, len + server_len);
        if (lines == NULL) goto out;
        memcpy(PyBytes_AS_STRING(lines), buf, (size_t)len);
        memcpy(PyBytes_AS_STRING(lines) + len, server, (size_t)server_len);
        Py_ssize_t cl = clen_end - clen;
        char digits[64];
        PyObject *clen_int;
        if (cl < (Py_ssize_t)sizeof digits) {
            memcpy(digits, clen, (size_t)cl);
            digits[cl] = '\0';
            clen_int = PyLong_FromString(digits, NULL, 10);
        } else {
            PyObject *t = PyUnicode_FromStringAndSize(clen, cl);
            clen_int = t == NULL ? NULL : PyLong_FromUnicodeObject(t, 10);
            Py_XDECREF(t);
        }
        PyObject *length = PyBytes_FromStringAndSize(NULL, 16 + cl + 2);
        PyObject *code = PyLong_FromLong(status);
        PyObject *status_line = NULL;
        if (code != NULL) {
            status_line = PyDict_GetItemWithError(args[2], code); /* borrowed */
            if (status_line != NULL) {
                Py_INCREF(status_line);
            } else if (!PyErr_Occurred()) {
                status_line = PyBytes_FromFormat("HTTP/1.1 %d Unknown\r\n", status); /* upstream.reason_phrase */
            }
        }
        if (clen_int == NULL || length == NULL || code == NULL || status_line == NULL) {
            Py_XDECREF(lines);
            Py_XDECREF(clen_int);
            Py_XDECREF(length);
            Py_XDECREF(code);
            Py_XDECREF(status_line);
            goto out;
        }
        char *lp = PyBytes_AS_STRING(length);
        memcpy(lp, "Content-Length: ", 16);
        memcpy(lp + 16, clen, (size_t)cl);
        lp[16 + cl] = '\r';
        lp[17 + cl] = '\n';
        result = PyTuple_Pack(5, code, clen_int, status_line, lines, length);
        Py_DECREF(code);
        Py_DECREF(clen_int);
        Py_DECREF(status_line);
        Py_DECREF(lines);
        Py_DECREF(length);
        goto out;
    }
none:
    result = Py_None;
    Py_INCREF(result);
out:
    if (buf != small) PyMem_Free(buf);
    return result;
}

/* request(data, max_headers) -> (method, version, keep_alive, host, url, x_request_id, prefix, tail, special) | None:
 * kubesvc.dataplane.ingress.exchange.request_py in C (the same result for every head llhttp accepts). */

/* request headers the router sets aside (exchange.HOP) or records as well as forwards (exchange.RECORD) */
static const char *const HOP_NAMES[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "proxy", "expect", "content-length", "x-forwarded-for", "x-forwarded-host", "x-forwarded-port",
    "x-forwarded-proto", "x-forwarded-scheme", "x-scheme", "x-real-ip", "x-request-id", "x-original-forwarded-for", NULL};
static const char *const RECORD_NAMES[] = {"host", "user-agent", "referer", NULL};

static int one_of(const char *s, Py_ssize_t n, const char *const *names) {
    for (int i = 0; names[i] != NULL; i++)
        if (lower_eq(s, n, names[i], (Py_ssize_t)strlen(names[i]))) return i;
    return -1;
}

static int put_lower(PyObject *dict, const char *name, Py_ssize_t nl, const char *v, Py_ssize_t vl) {
    PyObject *key = PyBytes_FromStringAndSize(NULL, nl);
    if (key == NULL) return -1;
    char *k = PyBytes_AS_STRING(key);
    for (Py_ssize_t i = 0; i < nl; i++) k[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    PyObject *val = PyBytes_FromStringAndSize(v, vl);
    int r = val == NULL ? -1 : PyDict_SetItem(dict, key, val);
    Py_DECREF(key);
    Py_XDECREF(val);
    return r;
}

static PyObject *request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "request(data: bytes, max_headers: int)");
        return NULL;
    }
    long max_headers = PyLong_AsLong(args[1]);
    if (max_headers == -1 && PyErr_Occurred()) return NULL;
    const char *d = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (size < 18 || memcmp(d + size - 4, "\r\n\r\n", 4) != 0) Py_RETURN_NONE;
    const char *end = d + size - 4;
    const char *p = find_crlf(d, end); /* the request line's CRLF (end: no header line) */
    const char *sp1 = memchr(d, ' ', (size_t)(p - d));
    if (sp1 == NULL || sp1 == d) Py_RETURN_NONE;
    const char *url = sp1 + 1;
    const char *sp2 = memchr(url, ' ', (size_t)(p - url));
    if (sp2 == NULL || p - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '1' && sp2[8] != '0')) Py_RETURN_NONE;
    if (url >= sp2 || *url != '/') Py_RETURN_NONE;
    for (const char *m = d; m < sp1; m++) /* a method name as llhttp knows them (it skips blank lines before one) */
        if ((*m < 'A' || *m > 'Z') && *m != '-') Py_RETURN_NONE;
    if (sp1 - d == 7 && memcmp(d, "CONNECT", 7) == 0) Py_RETURN_NONE;
    int v11 = sp2[8] == '1';
    const char *host = NULL, *host_end = NULL, *rid = NULL, *rid_end = NULL, *xff = NULL, *xff_end = NULL;
    int connection = 0; /* 0: none, 1: keep-alive, 2: close */
    long nheaders = 0;
    PyObject *special = PyDict_New();
    if (special == NULL) return NULL;
    /* the prefix: method SP url " HTTP/1.1" CRLF, then the forwarded header lines */
    Py_ssize_t cap = (sp2 - d) + 11 + (end - p) + 2, len = 0;
    char *buf = PyMem_Malloc((size_t)cap);
    PyObject *result = NULL;
    if (buf == NULL) {
        Py_DECREF(special);
        return PyErr_NoMemory();
    }
    memcpy(buf, d, (size_t)(sp2 - d));
    len = sp2 - d;
    memcpy(buf + len, " HTTP/1.1\r\n", 11);
    len += 11;
    while (p < end) {
        const char *s = p + 2;
        const char *e = find_crlf(s, end);
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon == NULL || colon == s) goto none;
        if (colon + 1 >= e || colon[1] != ' ') goto none;
        if (colon + 2 < e && (colon[2] == ' ' || colon[2] == '\t')) goto none;
        if (++nheaders > max_headers) goto none;
        const char *v = colon + 2;
        Py_ssize_t nl = colon - s, vl = e - v;
        int hop = one_of(s, nl, HOP_NAMES);
        if (hop >= 0) {
            switch (hop) {
            case 0: /* connection: only a plain keep-alive or close, once */
                if (connection) goto none;
                if (lower_eq(v, vl, "keep-alive", 10)) connection = 1;
                else if (lower_eq(v, vl, "close", 5)) connection = 2;
                else goto none;
                break;
            case 2: case 5: case 6: case 8: case 9: /* proxy-connection (llhttp reads it as Connection), transfer-encoding,
                                                        upgrade, expect, content-length: the parser path */
                goto none;
            case 10: xff = v; xff_end = e; break;
            case 17: rid = v; rid_end = e; break;
            default: break;
            }
            if (put_lower(special, s, nl, v, vl) < 0) goto out;
            p = e;
            continue;
        }
        int rec = one_of(s, nl, RECORD_NAMES);
        if (rec == 0) {
            if (host != NULL) goto none; /* a second Host: 400 on the parser path */
            host = v;
            host_end = e;
        }
        if (rec >= 0 && put_lower(special, s, nl, v, vl) < 0) goto out;
        memcpy(buf + len, s, (size_t)(e - s));
        len += e - s;
        buf[len++] = '\r';
        buf[len++] = '\n';
        p = e;
    }
    if ((host == NULL || host == host_end) && v11) goto none; /* no Host or an empty one in 1.1: 400 on the parser path */
    {
        int keep = v11 ? connection != 2 : connection == 1;
        Py_ssize_t xl = xff == NULL ? 0 : xff_end - xff;
        PyObject *tail = PyBytes_FromStringAndSize(NULL, xl ? 26 + xl + 2 + 2 : 2);
        if (tail == NULL) goto out;
        char *t = PyBytes_AS_STRING(tail);
        if (xl) {
            memcpy(t, "X-Original-Forwarded-For: ", 26);
            memcpy(t + 26, xff, (size_t)xl);
            memcpy(t + 26 + xl, "\r\n\r\n", 4);
        } else {
            memcpy(t, "\r\n", 2);
        }
        result = Py_BuildValue("(y#sOy#y#y#y#NO)", d, (Py_ssize_t)(sp1 - d), v11 ? "1.1" : "1.0", keep ? Py_True : Py_False,
                               host == NULL ? "" : host, host == NULL ? (Py_ssize_t)0 : (Py_ssize_t)(host_end - host),
                               url, (Py_ssize_t)(sp2 - url), rid == NULL ? "" : rid, rid == NULL ? (Py_ssize_t)0 : (Py_ssize_t)(rid_end - rid),
                               buf, len, tail, special);
        goto out;
    }
none:
    result = Py_None;
    Py_INCREF(result);
out:
    PyMem_Free(buf);
    Py_DECREF(special);
    return result;
}

static PyMethodDef methods[] = {
    {"answer", (PyCFunction)(void (*)(void))answer, METH_FASTCALL,
     "answer(data, head_end, status_lines, server_line) -> (status, length, status line, header lines, Content-Length line) | None"},
    {"request", (PyCFunction)(void (*)(void))request, METH_FASTCALL,
     "request(data, max_headers) -> (method, version, keep_alive, host, url, x_request_id, prefix, tail, special) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_heads", "The ingress router's compiled head transform.", -1, methods};

PyMODINIT_FUNC PyInit__heads(void) { return PyModule_Create(&module); }
