/* The ingress router's compiled parts (optional: built by setup.py when a C compiler is there; without it, or with
 * KUBESVC_INGRESS_COMPILED=0, the router takes its Python paths, which write the same bytes).
 *
 * - answer(data, head_end, status_lines, server_line) is kubesvc.dataplane.ingress.upstream.answer_py in C, and
 *   request(data, max_headers) is kubesvc.dataplane.ingress.exchange.request_py: the same result for every head
 *   llhttp accepts (tests/dataplane/test_ingress_heads.py compares them), or None. They check nothing llhttp checks.
 * - ClientBase and UpstreamBase, the bases of http.ClientConn and upstream.UpstreamConn: the fast lane (see lane.py
 *   for its rules). Their data_received forwards a plain exchange (one bodyless request alone in its chunk, answered
 *   whole with a Content-Length body on a pooled connection) with its state in C; everything else goes to the
 *   Python general_data_received. ClientBase.cur builds the Python Exchange of a fast exchange the moment Python
 *   code looks at it (Cycle.materialize), so every other path sees the state the Python path would have left.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

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

/* ------------------------------------------------------------------------------------------------ answer heads */

struct ans {
    int status;
    const char *clen; /* the Content-Length value's digits */
    Py_ssize_t clen_len;
    int has_server;
    Py_ssize_t lines_len; /* bytes of kept header lines written to out */
};

/* Reads the answer head data[:head_end] (answer_py's conditions) and writes the kept header lines, each ending in
 * CRLF, to out (room for head_end bytes). 1: a plain answer; 0: not one. */
static int read_answer(const char *d, Py_ssize_t head_end, struct ans *a, char *out) {
    if (head_end < 16 || memcmp(d, "HTTP/1.1 ", 9) != 0) return 0;
    if (d[9] < '0' || d[9] > '9' || d[10] < '0' || d[10] > '9' || d[11] < '0' || d[11] > '9') return 0;
    int status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    if (status < 200 || status >= 600 || status == 204 || status == 304) return 0;
    const char *end = d + head_end - 4; /* the header lines end here (the blank line follows) */
    const char *p = find_crlf(d, end);  /* the status line's CRLF */
    const char *clen = NULL, *clen_end = NULL;
    int has_server = 0, has_connection = 0, has_keep_alive = 0;
    Py_ssize_t len = 0;
    while (p < end) {
        const char *s = p + 2; /* the line after this CRLF */
        const char *e = find_crlf(s, end);
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon == NULL) return 0;
        /* canonical: "Name: value", one space, the value not starting with a blank (or empty) */
        if (colon + 1 >= e || colon[1] != ' ') return 0;
        if (colon + 2 < e && (colon[2] == ' ' || colon[2] == '\t')) return 0;
        const char *v = colon + 2;
        Py_ssize_t nl = colon - s;
        if (lower_eq(s, nl, "content-length", 14)) {
            if (clen != NULL || v >= e) return 0;
            for (const char *q = v; q < e; q++)
                if (*q < '0' || *q > '9') return 0;
            clen = v;
            clen_end = e;
        } else if (lower_eq(s, nl, "connection", 10)) {
            if (has_connection || !lower_eq(v, e - v, "keep-alive", 10)) return 0;
            has_connection = 1;
        } else if (lower_eq(s, nl, "keep-alive", 10)) {
            if (has_keep_alive) return 0;
            has_keep_alive = 1;
        } else if (lower_eq(s, nl, "te", 2) || lower_eq(s, nl, "trailer", 7) || lower_eq(s, nl, "transfer-encoding", 17)
                   || lower_eq(s, nl, "upgrade", 7) || lower_eq(s, nl, "proxy-connection", 16)) {
            return 0;
        } else {
            if (lower_eq(s, nl, "server", 6)) has_server = 1;
            Py_ssize_t n = e - s;
            memcpy(out + len, s, (size_t)n);
            out[len + n] = '\r';
            out[len + n + 1] = '\n';
            len += n + 2;
        }
        p = e;
    }
    if (clen == NULL) return 0;
    a->status = status;
    a->clen = clen;
    a->clen_len = clen_end - clen;
    a->has_server = has_server;
    a->lines_len = len;
    return 1;
}

static long long digits_value(const char *p, Py_ssize_t n) { /* n <= 18 digits */
    long long v = 0;
    for (Py_ssize_t i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

static PyObject *digits_int(const char *p, Py_ssize_t n) {
    if (n <= 18) return PyLong_FromLongLong(digits_value(p, n));
    PyObject *t = PyUnicode_FromStringAndSize(p, n);
    PyObject *v = t == NULL ? NULL : PyLong_FromUnicodeObject(t, 10);
    Py_XDECREF(t);
    return v;
}

/* STATUS_LINES[status] (a new reference), or the line upstream.reason_phrase gives an unknown code */
static PyObject *status_line(PyObject *status_lines, int status) {
    PyObject *code = PyLong_FromLong(status);
    if (code == NULL) return NULL;
    PyObject *line = PyDict_GetItemWithError(status_lines, code); /* borrowed */
    Py_DECREF(code);
    if (line != NULL) {
        Py_INCREF(line);
        return line;
    }
    if (PyErr_Occurred()) return NULL;
    return PyBytes_FromFormat("HTTP/1.1 %d Unknown\r\n", status);
}

static PyObject *answer(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyDict_Check(args[2]) || !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "answer(data: bytes, head_end: int, status_lines: dict, server_line: bytes)");
        return NULL;
    }
    Py_ssize_t head_end = PyLong_AsSsize_t(args[1]);
    if (head_end == -1 && PyErr_Occurred()) return NULL;
    const char *d = PyBytes_AS_STRING(args[0]);
    if (head_end < 16 || head_end > PyBytes_GET_SIZE(args[0])) Py_RETURN_NONE;
    char small[2048];
    char *buf = head_end <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)head_end);
    if (buf == NULL) return PyErr_NoMemory();
    struct ans a;
    PyObject *result = NULL;
    if (!read_answer(d, head_end, &a, buf)) {
        result = Py_None;
        Py_INCREF(result);
        goto out;
    }
    Py_ssize_t server_len = a.has_server ? 0 : PyBytes_GET_SIZE(args[3]);
    PyObject *lines = PyBytes_FromStringAndSize(NULL, a.lines_len + server_len);
    PyObject *length = PyBytes_FromStringAndSize(NULL, 16 + a.clen_len + 2);
    PyObject *line = status_line(args[2], a.status);
    if (lines == NULL || length == NULL || line == NULL) {
        Py_XDECREF(lines);
        Py_XDECREF(length);
        Py_XDECREF(line);
        goto out;
    }
    memcpy(PyBytes_AS_STRING(lines), buf, (size_t)a.lines_len);
    memcpy(PyBytes_AS_STRING(lines) + a.lines_len, PyBytes_AS_STRING(args[3]), (size_t)server_len);
    char *lp = PyBytes_AS_STRING(length);
    memcpy(lp, "Content-Length: ", 16);
    memcpy(lp + 16, a.clen, (size_t)a.clen_len);
    memcpy(lp + 16 + a.clen_len, "\r\n", 2);
    PyObject *clen = digits_int(a.clen, a.clen_len);
    if (clen == NULL) {
        Py_DECREF(lines);
        Py_DECREF(length);
        Py_DECREF(line);
        goto out;
    }
    result = Py_BuildValue("(iNNNN)", a.status, clen, line, lines, length);
out:
    if (buf != small) PyMem_Free(buf);
    return result;
}

/* ------------------------------------------------------------------------------------------------ request heads */

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

struct req {
    const char *method, *url, *host, *rid, *xff; /* host, rid, xff: NULL when absent */
    Py_ssize_t method_len, url_len, host_len, rid_len, xff_len;
    int v11, keep;
    Py_ssize_t prefix_len; /* bytes written to out: the upstream head's prefix (see cycle.Cycle.head_parts) */
};

/* Reads data[:size] as exactly one bodyless request head (request_py's conditions) and writes the upstream head's
 * prefix (request line in HTTP/1.1, forwarded header lines) to out (room for size bytes); the set-aside and recorded
 * headers go to special when it is not NULL. 1: read; 0: not such a head; -1: error (set). */
static int read_request(const char *d, Py_ssize_t size, long max_headers, struct req *r, char *out, PyObject *special) {
    if (size < 18 || memcmp(d + size - 4, "\r\n\r\n", 4) != 0) return 0;
    const char *end = d + size - 4;
    const char *p = find_crlf(d, end); /* the request line's CRLF (end: no header line) */
    const char *sp1 = memchr(d, ' ', (size_t)(p - d));
    if (sp1 == NULL || sp1 == d) return 0;
    const char *url = sp1 + 1;
    const char *sp2 = memchr(url, ' ', (size_t)(p - url));
    if (sp2 == NULL || p - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '1' && sp2[8] != '0')) return 0;
    if (url >= sp2 || *url != '/') return 0;
    for (const char *m = d; m < sp1; m++) /* a method name as llhttp knows them (it skips blank lines before one) */
        if ((*m < 'A' || *m > 'Z') && *m != '-') return 0;
    if (sp1 - d == 7 && memcmp(d, "CONNECT", 7) == 0) return 0;
    int v11 = sp2[8] == '1';
    const char *host = NULL, *host_end = NULL, *rid = NULL, *rid_end = NULL, *xff = NULL, *xff_end = NULL;
    int connection = 0; /* 0: none, 1: keep-alive, 2: close */
    long nheaders = 0;
    Py_ssize_t len = sp2 - d;
    memcpy(out, d, (size_t)len);
    memcpy(out + len, " HTTP/1.1\r\n", 11);
    len += 11;
    while (p < end) {
        const char *s = p + 2;
        const char *e = find_crlf(s, end);
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon == NULL || colon == s) return 0;
        if (colon + 1 >= e || colon[1] != ' ') return 0;
        if (colon + 2 < e && (colon[2] == ' ' || colon[2] == '\t')) return 0;
        if (++nheaders > max_headers) return 0;
        const char *v = colon + 2;
        Py_ssize_t nl = colon - s, vl = e - v;
        int hop = one_of(s, nl, HOP_NAMES);
        if (hop >= 0) {
            switch (hop) {
            case 0: /* connection: only a plain keep-alive or close, once */
                if (connection) return 0;
                if (lower_eq(v, vl, "keep-alive", 10)) connection = 1;
                else if (lower_eq(v, vl, "close", 5)) connection = 2;
                else return 0;
                break;
            case 2: case 5: case 6: case 8: case 9: /* proxy-connection (llhttp reads it as Connection), transfer-encoding,
                                                        upgrade, expect, content-length: the parser path */
                return 0;
            case 10: xff = v; xff_end = e; break;
            case 17: rid = v; rid_end = e; break;
            default: break;
            }
            if (special != NULL && put_lower(special, s, nl, v, vl) < 0) return -1;
            p = e;
            continue;
        }
        int rec = one_of(s, nl, RECORD_NAMES);
        if (rec == 0) {
            if (host != NULL) return 0; /* a second Host: 400 on the parser path */
            host = v;
            host_end = e;
        }
        if (rec >= 0 && special != NULL && put_lower(special, s, nl, v, vl) < 0) return -1;
        memcpy(out + len, s, (size_t)(e - s));
        len += e - s;
        out[len++] = '\r';
        out[len++] = '\n';
        p = e;
    }
    if ((host == NULL || host == host_end) && v11) return 0; /* no Host or an empty one in 1.1: 400 on the parser path */
    r->method = d;
    r->method_len = sp1 - d;
    r->url = url;
    r->url_len = sp2 - url;
    r->host = host;
    r->host_len = host == NULL ? 0 : host_end - host;
    r->rid = rid;
    r->rid_len = rid == NULL ? 0 : rid_end - rid;
    r->xff = xff;
    r->xff_len = xff == NULL ? 0 : xff_end - xff;
    r->v11 = v11;
    r->keep = v11 ? connection != 2 : connection == 1;
    r->prefix_len = len;
    return 1;
}

static Py_ssize_t tail_len(const struct req *r) { return r->xff_len ? 26 + r->xff_len + 4 : 2; }

static void write_tail(const struct req *r, char *t) {
    if (r->xff_len) {
        memcpy(t, "X-Original-Forwarded-For: ", 26);
        memcpy(t + 26, r->xff, (size_t)r->xff_len);
        memcpy(t + 26 + r->xff_len, "\r\n\r\n", 4);
    } else {
        memcpy(t, "\r\n", 2);
    }
}

/* request(data, max_headers) -> (method, version, keep_alive, host, url, x_request_id, prefix, tail, special) | None */
static PyObject *request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "request(data: bytes, max_headers: int)");
        return NULL;
    }
    long max_headers = PyLong_AsLong(args[1]);
    if (max_headers == -1 && PyErr_Occurred()) return NULL;
    const char *d = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    PyObject *special = PyDict_New();
    if (special == NULL) return NULL;
    char *buf = PyMem_Malloc((size_t)size + 16);
    if (buf == NULL) {
        Py_DECREF(special);
        return PyErr_NoMemory();
    }
    struct req r;
    PyObject *result = NULL;
    int got = read_request(d, size, max_headers, &r, buf, special);
    if (got == 0) {
        result = Py_None;
        Py_INCREF(result);
    } else if (got > 0) {
        PyObject *tail = PyBytes_FromStringAndSize(NULL, tail_len(&r));
        if (tail != NULL) {
            write_tail(&r, PyBytes_AS_STRING(tail));
            result = Py_BuildValue("(y#sOy#y#y#y#NO)", r.method, r.method_len, r.v11 ? "1.1" : "1.0", r.keep ? Py_True : Py_False,
                                   r.host == NULL ? "" : r.host, r.host_len, r.url, r.url_len, r.rid == NULL ? "" : r.rid,
                                   r.rid_len, buf, r.prefix_len, tail, special);
        }
    }
    PyMem_Free(buf);
    Py_DECREF(special);
    return result;
}

/* ------------------------------------------------------------------------------------------------ the fast lane */

static int lane_on = 0; /* setup() was called */
static PyObject *g_status_lines, *g_server_line, *g_clock, *g_hub, *g_request_checker, *g_zero, *g_one, *g_idle;
static PyObject *s_tunnel_up, *s_closing, *s_lingering, *s_parsing, *s_checker, *s_feed_data, *s_hosts, *s_host,
    *s_route_hit, *s_endpoints, *s_index, *s_pool, *s_idle, *s_closed, *s_owner, *s_tunnel, *s_got_data, *s_transport,
    *s_write, *s_deadline, *s_now, *s_in_message, *s_valid, *s_release, *s_access_log, *s_on, *s_eof, *s_pending,
    *s_pauses, *s_finish, *s_requests, *s_deadline_kind, *s_materialize, *s_general, *s_up;

typedef struct {
    PyObject_HEAD
    PyObject *cur; /* the Python exchange (NULL: None) */
    /* set by lane_setup (connection_made) */
    int ready, https;
    PyObject *shared, *transport, *forwarded, *hsts; /* hsts: NULL when not added */
    Py_ssize_t quick_max;
    long max_headers;
    double read_timeout, keepalive_timeout;
    /* the fast exchange, while fx_data is set */
    PyObject *fx_data, *fx_rid, *fx_hit, *fx_ep, *fx_conn;
    double fx_started;
    int fx_head, fx_keep, fx_v11, fx_answered, fx_status;
    long long fx_sent;
} ClientBase;

static PyTypeObject ClientBaseType;

static void fx_clear(ClientBase *s) {
    Py_CLEAR(s->fx_data);
    Py_CLEAR(s->fx_rid);
    Py_CLEAR(s->fx_hit);
    Py_CLEAR(s->fx_ep);
    Py_CLEAR(s->fx_conn);
    s->fx_answered = 0;
}

static int cb_traverse(ClientBase *s, visitproc visit, void *arg) {
    Py_VISIT(s->cur);
    Py_VISIT(s->shared);
    Py_VISIT(s->transport);
    Py_VISIT(s->forwarded);
    Py_VISIT(s->hsts);
    Py_VISIT(s->fx_data);
    Py_VISIT(s->fx_rid);
    Py_VISIT(s->fx_hit);
    Py_VISIT(s->fx_ep);
    Py_VISIT(s->fx_conn);
    return 0;
}

static int cb_clear(ClientBase *s) {
    Py_CLEAR(s->cur);
    Py_CLEAR(s->shared);
    Py_CLEAR(s->transport);
    Py_CLEAR(s->forwarded);
    Py_CLEAR(s->hsts);
    fx_clear(s);
    s->ready = 0;
    return 0;
}

static void cb_dealloc(ClientBase *s) {
    PyObject_GC_UnTrack(s);
    cb_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* The Python exchange of the fast one (Cycle.materialize), from now on the connection's ``cur``. */
static int materialize(ClientBase *s) {
    PyObject *started = PyFloat_FromDouble(s->fx_started);
    PyObject *status = PyLong_FromLong(s->fx_answered ? s->fx_status : 0);
    PyObject *sent = PyLong_FromLongLong(s->fx_sent);
    PyObject *ex = NULL;
    if (started != NULL && status != NULL && sent != NULL) {
        PyObject *args[] = {(PyObject *)s, s->fx_data, s->fx_rid, s->fx_hit, s->fx_ep, s->fx_conn ? s->fx_conn : Py_None,
                            started, status, sent};
        ex = PyObject_VectorcallMethod(s_materialize, args, 9, NULL);
    }
    Py_XDECREF(started);
    Py_XDECREF(status);
    Py_XDECREF(sent);
    if (ex == NULL) return -1;
    fx_clear(s);
    Py_XSETREF(s->cur, ex);
    return 0;
}

static PyObject *cb_get_cur(ClientBase *s, void *closure) {
    if (s->fx_data != NULL && materialize(s) < 0) return NULL;
    PyObject *c = s->cur ? s->cur : Py_None;
    Py_INCREF(c);
    return c;
}

static int cb_set_cur(ClientBase *s, PyObject *value, void *closure) {
    fx_clear(s);
    if (value == Py_None) value = NULL;
    Py_XINCREF(value);
    Py_XSETREF(s->cur, value);
    return 0;
}

/* 1: the attribute is true; 0: false; -1: error */
static int attr_true(PyObject *o, PyObject *name) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL) return -1;
    int r = v == Py_True ? 1 : v == Py_False || v == Py_None ? 0 : PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

static int attr_none(PyObject *o, PyObject *name) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL) return -1;
    Py_DECREF(v);
    return v == Py_None;
}

static int attr_empty(PyObject *o, PyObject *name) { /* len(o.name) == 0 */
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL) return -1;
    Py_ssize_t n = PyObject_Length(v);
    Py_DECREF(v);
    return n < 0 ? -1 : n == 0;
}

static int set_attr_float(PyObject *o, PyObject *name, double v) {
    PyObject *f = PyFloat_FromDouble(v);
    if (f == NULL) return -1;
    int r = PyObject_SetAttr(o, name, f);
    Py_DECREF(f);
    return r;
}

static int clock_now(double *now) { /* upstream.Clock.now */
    PyObject *v = PyObject_GetAttr(g_clock, s_now);
    if (v == NULL) return -1;
    *now = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return *now == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* X-Request-ID: 32 random lower-case hex digits (cycle.new_request_id); splitmix64, seeded per process */
static uint64_t rng_state;
static pid_t rng_pid;

static uint64_t rng_next(void) {
    pid_t pid = getpid();
    if (pid != rng_pid) {
        if (getrandom(&rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            rng_state ^= (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)pid;
        }
        rng_pid = pid;
    }
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static PyObject *new_request_id(void) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, 32);
    if (b == NULL) return NULL;
    char *p = PyBytes_AS_STRING(b);
    static const char hex[] = "0123456789abcdef";
    for (int k = 0; k < 2; k++) {
        uint64_t v = rng_next();
        for (int i = 0; i < 16; i++, v >>= 4) p[k * 16 + 15 - i] = hex[v & 15];
    }
    return b;
}

/* A path that normalize_path keeps as it is (exchange.Shared.route_hit's shortcut) */
static int plain_path(const char *p, Py_ssize_t n) {
    if (n < 1 || p[0] != '/') return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%' || c == '#') return 0;
        if (c == '/' && i + 1 < n && (p[i + 1] == '/' || p[i + 1] == '.')) return 0;
    }
    return 1;
}

/* The client side: one bodyless request alone in data, going upstream on a pooled connection, sent with its state
 * kept here (cycle.Cycle.replay + route + dial + attach, for this case). 1: sent; 0: not this case, nothing changed
 * (the Python path takes data); -1: error. */
static int client_fast(ClientBase *s, PyObject *data) {
    if (!s->ready || s->fx_data != NULL || s->cur != NULL) return 0;
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size > s->quick_max || size < 18) return 0;
    int t;
    if ((t = attr_none((PyObject *)s, s_tunnel_up)) != 1) return t;
    if ((t = attr_true((PyObject *)s, s_closing)) != 0) return t < 0 ? -1 : 0;
    if ((t = attr_true((PyObject *)s, s_lingering)) != 0) return t < 0 ? -1 : 0;
    if ((t = attr_none((PyObject *)s, s_parsing)) != 1) return t;
    const char *d = PyBytes_AS_STRING(data);
    char small[4096];
    char *buf = size <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)size);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int result = 0;
    struct req r;
    PyObject *host = NULL, *hosts = NULL, *hh = NULL, *hit = NULL, *endpoints = NULL, *index = NULL, *pool = NULL,
             *idle = NULL, *checker = NULL, *conn = NULL, *rid = NULL, *head = NULL, *transport = NULL, *fed = NULL;
    if (read_request(d, size, s->max_headers, &r, buf, NULL) != 1) goto out;
    host = PyBytes_FromStringAndSize(r.host ? r.host : "", r.host_len);
    if (host == NULL) goto fail;
    hosts = PyObject_GetAttr(s->shared, s_hosts);
    if (hosts == NULL) goto fail;
    if (!PyDict_Check(hosts)) goto out;
    hh = PyDict_GetItemWithError(hosts, host);
    if (hh != NULL) {
        Py_INCREF(hh);
    } else {
        if (PyErr_Occurred()) goto fail;
        hh = PyObject_CallMethodOneArg(s->shared, s_host, host);
        if (hh == NULL) goto fail;
    }
    if (!PyTuple_Check(hh) || PyTuple_GET_SIZE(hh) != 4) goto out;
    if (r.host_len) {
        if ((t = PyObject_IsTrue(PyTuple_GET_ITEM(hh, 0))) < 0) goto fail;
        if (!t) goto out; /* not a Host nginx would route: 400 on the Python path */
    }
    Py_ssize_t path_len = r.url_len;
    const char *q = memchr(r.url, '?', (size_t)r.url_len);
    if (q != NULL) path_len = q - r.url;
    PyObject *anywhere = PyTuple_GET_ITEM(hh, 3);
    if (anywhere != Py_None && plain_path(r.url, path_len)) {
        hit = anywhere;
        Py_INCREF(hit);
    } else {
        PyObject *url = PyBytes_FromStringAndSize(r.url, r.url_len);
        if (url == NULL) goto fail;
        PyObject *args[] = {s->shared, host, url};
        hit = PyObject_VectorcallMethod(s_route_hit, args, 3, NULL);
        Py_DECREF(url);
        if (hit == NULL) goto fail;
    }
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 4) goto out;
    /* the router's own answers (404, 400, 308, 503) are the Python path's */
    if (PyTuple_GET_ITEM(hit, 0) == Py_None || (PyTuple_GET_ITEM(hit, 1) != Py_None && !s->https)
        || PyTuple_GET_ITEM(hit, 2) == Py_None)
        goto out;
    PyObject *up = PyTuple_GET_ITEM(hit, 2);
    endpoints = PyObject_GetAttr(up, s_endpoints);
    if (endpoints == NULL) goto fail;
    if (!PyList_Check(endpoints) || PyList_GET_SIZE(endpoints) == 0) goto out;
    index = PyObject_GetAttr(up, s_index);
    if (index == NULL) goto fail;
    Py_ssize_t i = PyLong_AsSsize_t(index);
    if (i == -1 && PyErr_Occurred()) goto fail;
    if (i >= PyList_GET_SIZE(endpoints) || i < 0) i = 0;
    PyObject *ep = PyList_GET_ITEM(endpoints, i);
    /* a pooled connection to it (upstream.Pool.take; a fresh dial is the Python path's) */
    pool = PyObject_GetAttr(s->shared, s_pool);
    if (pool == NULL) goto fail;
    idle = PyObject_GetAttr(pool, s_idle);
    if (idle == NULL) goto fail;
    PyObject *lst = PyDict_Check(idle) ? PyDict_GetItemWithError(idle, ep) : NULL;
    if (lst == NULL) {
        if (PyErr_Occurred()) goto fail;
        goto out;
    }
    if (!PyList_Check(lst)) goto out;
    for (;;) {
        Py_ssize_t n = PyList_GET_SIZE(lst);
        if (n == 0) goto out;
        if ((t = attr_true(PyList_GET_ITEM(lst, n - 1), s_closed)) < 0) goto fail;
        if (!t) break;
        if (PyList_SetSlice(lst, n - 1, n, NULL) < 0) goto fail; /* closed: dropped, as take does */
    }
    /* llhttp accepts the request (a parser without callbacks, as http.ClientConn.quick_checks) */
    checker = PyObject_GetAttr((PyObject *)s, s_checker);
    if (checker == NULL) goto fail;
    if (checker == Py_None) {
        Py_SETREF(checker, PyObject_CallNoArgs(g_request_checker));
        if (checker == NULL || PyObject_SetAttr((PyObject *)s, s_checker, checker) < 0) goto fail;
    }
    fed = PyObject_CallMethodOneArg(checker, s_feed_data, data);
    if (fed == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) goto fail;
        PyErr_Clear();
        if (PyObject_SetAttr((PyObject *)s, s_checker, Py_None) < 0) goto fail;
        goto out;
    }
    if (!r.keep && PyObject_SetAttr((PyObject *)s, s_checker, Py_None) < 0) goto fail; /* nothing after a closing request */
    /* committed: take the connection, move the round robin on */
    Py_ssize_t n = PyList_GET_SIZE(lst);
    if (n == 0) goto out; /* (nothing above runs Python code that could take it) */
    conn = PyList_GET_ITEM(lst, n - 1);
    Py_INCREF(conn);
    if (PyList_SetSlice(lst, n - 1, n, NULL) < 0) goto fail;
    PyObject *next = PyLong_FromSsize_t(i + 1);
    if (next == NULL) goto fail;
    t = PyObject_SetAttr(up, s_index, next);
    Py_DECREF(next);
    if (t < 0) goto fail;
    rid = r.rid ? PyBytes_FromStringAndSize(r.rid, r.rid_len) : new_request_id();
    if (rid == NULL) goto fail;
    /* the upstream head: cycle.Cycle.request_head */
    Py_ssize_t rl = PyBytes_GET_SIZE(rid), fl = PyBytes_GET_SIZE(s->forwarded);
    head = PyBytes_FromStringAndSize(NULL, r.prefix_len + 14 + rl + 20 + r.host_len + fl + tail_len(&r));
    if (head == NULL) goto fail;
    char *h = PyBytes_AS_STRING(head);
    memcpy(h, buf, (size_t)r.prefix_len);
    h += r.prefix_len;
    memcpy(h, "X-Request-ID: ", 14);
    memcpy(h + 14, PyBytes_AS_STRING(rid), (size_t)rl);
    h += 14 + rl;
    memcpy(h, "\r\nX-Forwarded-Host: ", 20);
    memcpy(h + 20, r.host ? r.host : "", (size_t)r.host_len);
    h += 20 + r.host_len;
    memcpy(h, PyBytes_AS_STRING(s->forwarded), (size_t)fl);
    write_tail(&r, h + fl);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    Py_INCREF(data);
    s->fx_data = data;
    s->fx_rid = rid;
    rid = NULL;
    s->fx_hit = hit;
    hit = NULL;
    Py_INCREF(ep);
    s->fx_ep = ep;
    Py_INCREF(conn);
    s->fx_conn = conn;
    s->fx_started = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    s->fx_head = r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0;
    s->fx_keep = r.keep;
    s->fx_v11 = r.v11;
    s->fx_answered = 0;
    result = 1;
    if (PyObject_SetAttr((PyObject *)s, s_deadline, g_zero) < 0) goto fail;
    /* attach */
    if (PyObject_SetAttr(conn, s_owner, (PyObject *)s) < 0 || PyObject_SetAttr(conn, s_tunnel, Py_False) < 0
        || PyObject_SetAttr(conn, s_got_data, Py_False) < 0)
        goto fail;
    transport = PyObject_GetAttr(conn, s_transport);
    if (transport == NULL) goto fail;
    if (transport != Py_None) {
        PyObject *w = PyObject_CallMethodOneArg(transport, s_write, head);
        if (w == NULL) goto fail;
        Py_DECREF(w);
    }
    double now;
    if (clock_now(&now) < 0 || set_attr_float(conn, s_deadline, now + s->read_timeout) < 0) goto fail;
    goto out;
fail:
    result = -1;
out:
    if (buf != small) PyMem_Free(buf);
    Py_XDECREF(host);
    Py_XDECREF(hosts);
    Py_XDECREF(hh);
    Py_XDECREF(hit);
    Py_XDECREF(endpoints);
    Py_XDECREF(index);
    Py_XDECREF(pool);
    Py_XDECREF(idle);
    Py_XDECREF(checker);
    Py_XDECREF(fed);
    Py_XDECREF(conn);
    Py_XDECREF(rid);
    Py_XDECREF(head);
    Py_XDECREF(transport);
    return result;
}

static PyObject *call_general(PyObject *self, PyObject *data) {
    PyObject *args[] = {self, data};
    return PyObject_VectorcallMethod(s_general, args, 2, NULL);
}

static PyObject *cb_data_received(ClientBase *s, PyObject *data) {
    if (PyBytes_CheckExact(data)) {
        int r = client_fast(s, data);
        if (r < 0) return NULL;
        if (r > 0) Py_RETURN_NONE;
    }
    return call_general((PyObject *)s, data);
}

static PyObject *cb_lane_setup(ClientBase *s, PyObject *const *args, Py_ssize_t nargs) {
    /* lane_setup(shared, transport, forwarded, hsts | None, quick_max, max_headers, read_timeout, keepalive_timeout, https) */
    if (nargs != 9 || !PyBytes_Check(args[2]) || (args[3] != Py_None && !PyBytes_Check(args[3]))) {
        PyErr_SetString(PyExc_TypeError, "lane_setup(shared, transport, forwarded, hsts, quick_max, max_headers, "
                                         "read_timeout, keepalive_timeout, https)");
        return NULL;
    }
    Py_ssize_t quick_max = PyLong_AsSsize_t(args[4]);
    long max_headers = PyLong_AsLong(args[5]);
    double read_timeout = PyFloat_AsDouble(args[6]), keepalive_timeout = PyFloat_AsDouble(args[7]);
    int https = PyObject_IsTrue(args[8]);
    if (PyErr_Occurred()) return NULL;
    Py_INCREF(args[0]);
    Py_XSETREF(s->shared, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(s->transport, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(s->forwarded, args[2]);
    PyObject *hsts = args[3] == Py_None ? NULL : args[3];
    Py_XINCREF(hsts);
    Py_XSETREF(s->hsts, hsts);
    s->quick_max = quick_max;
    s->max_headers = max_headers;
    s->read_timeout = read_timeout;
    s->keepalive_timeout = keepalive_timeout;
    s->https = https;
    s->ready = lane_on;
    Py_RETURN_NONE;
}

static PyObject *cb_in_lane(ClientBase *s, PyObject *unused) { return PyBool_FromLong(s->fx_data != NULL); }

static PyMethodDef cb_methods[] = {
    {"data_received", (PyCFunction)cb_data_received, METH_O, "the fast lane, else general_data_received(data)"},
    {"lane_setup", (PyCFunction)(void (*)(void))cb_lane_setup, METH_FASTCALL, "the connection's constants (connection_made)"},
    {"in_lane", (PyCFunction)cb_in_lane, METH_NOARGS, "whether a fast exchange is in flight (no Python exchange made yet)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cb_getset[] = {
    {"cur", (getter)cb_get_cur, (setter)cb_set_cur, "the current exchange (a fast one is made a Python one when read)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ClientBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kubesvc.dataplane.ingress._heads.ClientBase",
    .tp_basicsize = sizeof(ClientBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The base of http.ClientConn: the fast lane's client side.",
    .tp_dealloc = (destructor)cb_dealloc,
    .tp_traverse = (traverseproc)cb_traverse,
    .tp_clear = (inquiry)cb_clear,
    .tp_methods = cb_methods,
    .tp_getset = cb_getset,
};

/* The upstream side: the answer to a fast exchange, plain and whole in data, written to the client, the connection
 * back to the pool and the exchange finished (cycle.Cycle.replay_response + finish, for this case). 1: done; 0: not
 * this case (the Python path takes data); -1: error. */
static int upstream_fast(PyObject *self, PyObject *data) {
    PyObject *owner = PyObject_GetAttr(self, s_owner);
    if (owner == NULL) return -1;
    int result = 0, t;
    PyObject *checker = NULL, *fed = NULL, *line = NULL, *out = NULL, *w = NULL, *pool = NULL, *rel = NULL, *ex = NULL;
    char small[2048];
    char *buf = small;
    ClientBase *o = (ClientBase *)owner;
    if (!PyObject_TypeCheck(owner, &ClientBaseType) || o->fx_data == NULL || o->fx_conn != self || o->fx_answered || o->fx_head)
        goto out;
    if ((t = attr_true(self, s_tunnel)) != 0 || (t = attr_true(self, s_in_message)) != 0) {
        result = t < 0 ? -1 : 0;
        goto out;
    }
    const char *d = PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    const char *blank = memmem(d, (size_t)size, "\r\n\r\n", 4);
    if (blank == NULL) goto out;
    Py_ssize_t head_end = blank - d + 4, body_len = size - head_end;
    if (head_end > (Py_ssize_t)sizeof small && (buf = PyMem_Malloc((size_t)head_end)) == NULL) {
        buf = small;
        PyErr_NoMemory();
        goto fail;
    }
    struct ans a;
    if (!read_answer(d, head_end, &a, buf) || a.clen_len > 18 || digits_value(a.clen, a.clen_len) != body_len) goto out;
    /* llhttp accepts the answer (upstream.UpstreamConn.valid) */
    checker = PyObject_GetAttr(self, s_checker);
    if (checker == NULL) goto fail;
    if (checker == Py_None) {
        fed = PyObject_CallMethodOneArg(self, s_valid, data);
        if (fed == NULL) goto fail;
        if (fed != Py_True) goto out;
    } else {
        fed = PyObject_CallMethodOneArg(checker, s_feed_data, data);
        if (fed == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) goto fail;
            PyErr_Clear();
            if (PyObject_SetAttr(self, s_checker, Py_None) < 0) goto fail;
            goto out;
        }
    }
    /* committed */
    result = 1;
    if (PyObject_SetAttr(self, s_got_data, Py_True) < 0) goto fail;
    line = status_line(g_status_lines, a.status);
    if (line == NULL) goto fail;
    const char *end = !o->fx_keep ? "Connection: close\r\n\r\n" : !o->fx_v11 ? "Connection: keep-alive\r\n\r\n" : "\r\n";
    Py_ssize_t ll = PyBytes_GET_SIZE(line), sl = a.has_server ? 0 : PyBytes_GET_SIZE(g_server_line),
               hl = o->hsts ? PyBytes_GET_SIZE(o->hsts) : 0, el = (Py_ssize_t)strlen(end);
    out = PyBytes_FromStringAndSize(NULL, ll + a.lines_len + sl + hl + 16 + a.clen_len + 2 + el + body_len);
    if (out == NULL) goto fail;
    char *p = PyBytes_AS_STRING(out);
    memcpy(p, PyBytes_AS_STRING(line), (size_t)ll);
    p += ll;
    memcpy(p, buf, (size_t)a.lines_len);
    p += a.lines_len;
    if (sl) memcpy(p, PyBytes_AS_STRING(g_server_line), (size_t)sl);
    p += sl;
    if (hl) memcpy(p, PyBytes_AS_STRING(o->hsts), (size_t)hl);
    p += hl;
    memcpy(p, "Content-Length: ", 16);
    memcpy(p + 16, a.clen, (size_t)a.clen_len);
    memcpy(p + 16 + a.clen_len, "\r\n", 2);
    p += 18 + a.clen_len;
    memcpy(p, end, (size_t)el);
    memcpy(p + el, d + head_end, (size_t)body_len);
    o->fx_answered = 1;
    o->fx_status = a.status;
    o->fx_sent = body_len;
    w = PyObject_CallMethodOneArg(o->transport, s_write, out);
    if (w == NULL) goto fail;
    pool = PyObject_GetAttr(self, s_pool);
    if (pool == NULL) goto fail;
    if (o->fx_data != NULL && o->fx_conn == self) {
        Py_CLEAR(o->fx_conn); /* ex.up = None */
        rel = PyObject_CallMethodOneArg(pool, s_release, self);
        if (rel == NULL) goto fail;
        /* finish: the common case here, the rest in Python (access log, `kubesvc top`, closing, pipelining, ...) */
        int plain = o->fx_keep;
        if (plain && (t = attr_none(o->shared, s_access_log)) != 1) plain = t;
        if (plain > 0 && (t = attr_true(g_hub, s_on)) != 0) plain = t < 0 ? -1 : 0;
        if (plain > 0 && (t = attr_true(owner, s_closing)) != 0) plain = t < 0 ? -1 : 0;
        if (plain > 0 && (t = attr_true(owner, s_eof)) != 0) plain = t < 0 ? -1 : 0;
        if (plain > 0 && (t = attr_empty(owner, s_pending)) != 1) plain = t;
        if (plain > 0 && (t = attr_empty(owner, s_pauses)) != 1) plain = t;
        if (plain < 0) goto fail;
        if (plain) {
            fx_clear(o);
            PyObject *count = PyObject_GetAttr(o->shared, s_requests);
            if (count == NULL) goto fail;
            PyObject *more = PyNumber_Add(count, g_one);
            Py_DECREF(count);
            if (more == NULL) goto fail;
            t = PyObject_SetAttr(o->shared, s_requests, more);
            Py_DECREF(more);
            double now;
            if (t < 0 || PyObject_SetAttr(owner, s_deadline_kind, g_idle) < 0 || clock_now(&now) < 0
                || set_attr_float(owner, s_deadline, now + o->keepalive_timeout) < 0)
                goto fail;
            goto out;
        }
        ex = cb_get_cur(o, NULL);
    } else { /* made a Python exchange while writing (pause_writing reads it): go on as replay_response does */
        ex = cb_get_cur(o, NULL);
        if (ex == NULL || (ex != Py_None && PyObject_SetAttr(ex, s_up, Py_None) < 0)) goto fail;
        rel = PyObject_CallMethodOneArg(pool, s_release, self);
        if (rel == NULL) goto fail;
    }
    if (ex == NULL) goto fail;
    if (ex != Py_None) {
        Py_XDECREF(w);
        w = PyObject_CallMethodOneArg(owner, s_finish, ex);
        if (w == NULL) goto fail;
    }
    goto out;
fail:
    result = -1;
out:
    if (buf != small) PyMem_Free(buf);
    Py_DECREF(owner);
    Py_XDECREF(checker);
    Py_XDECREF(fed);
    Py_XDECREF(line);
    Py_XDECREF(out);
    Py_XDECREF(w);
    Py_XDECREF(pool);
    Py_XDECREF(rel);
    Py_XDECREF(ex);
    return result;
}

static PyObject *ub_data_received(PyObject *self, PyObject *data) {
    if (lane_on && PyBytes_CheckExact(data)) {
        int r = upstream_fast(self, data);
        if (r < 0) return NULL;
        if (r > 0) Py_RETURN_NONE;
    }
    return call_general(self, data);
}

static PyMethodDef ub_methods[] = {
    {"data_received", (PyCFunction)ub_data_received, METH_O, "the fast lane, else general_data_received(data)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject UpstreamBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kubesvc.dataplane.ingress._heads.UpstreamBase",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The base of upstream.UpstreamConn: the fast lane's upstream side.",
    .tp_methods = ub_methods,
};

static PyObject *lane_setup_module(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    /* setup(status_lines, server_line, clock, hub, request_checker): what the lane reads of the Python side */
    if (nargs != 5 || !PyDict_Check(args[0]) || !PyBytes_Check(args[1]) || !PyCallable_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "setup(status_lines: dict, server_line: bytes, clock, hub, request_checker)");
        return NULL;
    }
    PyObject **slots[] = {&g_status_lines, &g_server_line, &g_clock, &g_hub, &g_request_checker};
    for (int i = 0; i < 5; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(*slots[i], args[i]);
    }
    lane_on = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"answer", (PyCFunction)(void (*)(void))answer, METH_FASTCALL,
     "answer(data, head_end, status_lines, server_line) -> (status, length, status line, header lines, Content-Length line) | None"},
    {"request", (PyCFunction)(void (*)(void))request, METH_FASTCALL,
     "request(data, max_headers) -> (method, version, keep_alive, host, url, x_request_id, prefix, tail, special) | None"},
    {"setup", (PyCFunction)(void (*)(void))lane_setup_module, METH_FASTCALL,
     "setup(status_lines, server_line, clock, hub, request_checker): turn the fast lane on"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_heads", "The ingress router's compiled parts.", -1, methods};

PyMODINIT_FUNC PyInit__heads(void) {
    struct { PyObject **slot; const char *name; } names[] = {
        {&s_tunnel_up, "tunnel_up"}, {&s_closing, "closing"}, {&s_lingering, "lingering"}, {&s_parsing, "parsing"},
        {&s_checker, "checker"}, {&s_feed_data, "feed_data"}, {&s_hosts, "hosts"}, {&s_host, "host"},
        {&s_route_hit, "route_hit"}, {&s_endpoints, "endpoints"}, {&s_index, "index"}, {&s_pool, "pool"},
        {&s_idle, "idle"}, {&s_closed, "closed"}, {&s_owner, "owner"}, {&s_tunnel, "tunnel"}, {&s_got_data, "got_data"},
        {&s_transport, "transport"}, {&s_write, "write"}, {&s_deadline, "deadline"}, {&s_now, "now"},
        {&s_in_message, "in_message"}, {&s_valid, "valid"}, {&s_release, "release"}, {&s_access_log, "access_log"},
        {&s_on, "on"}, {&s_eof, "eof"}, {&s_pending, "pending"}, {&s_pauses, "pauses"}, {&s_finish, "finish"},
        {&s_requests, "requests"}, {&s_deadline_kind, "deadline_kind"}, {&s_materialize, "materialize"},
        {&s_general, "general_data_received"}, {&s_up, "up"}, {&g_idle, "idle"}, {NULL, NULL}};
    for (int i = 0; names[i].slot != NULL; i++)
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].name)) == NULL) return NULL;
    if ((g_zero = PyFloat_FromDouble(0.0)) == NULL || (g_one = PyLong_FromLong(1)) == NULL) return NULL;
    /* object's own __new__, not PyType_GenericNew: it lays out the instance dict's values inline, which the
     * interpreter's attribute specializations need (with GenericNew every attribute of a ClientConn costs twice) */
    ClientBaseType.tp_new = UpstreamBaseType.tp_new = PyBaseObject_Type.tp_new;
    if (PyType_Ready(&ClientBaseType) < 0 || PyType_Ready(&UpstreamBaseType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ClientBaseType);
    Py_INCREF(&UpstreamBaseType);
    if (PyModule_AddObject(m, "ClientBase", (PyObject *)&ClientBaseType) < 0
        || PyModule_AddObject(m, "UpstreamBase", (PyObject *)&UpstreamBaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
