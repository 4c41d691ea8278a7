/* The hot loop of n-gram counting (genemask.ngrams): raw FASTA sequence bytes -> counts of max_n-grams.
 *
 * Why C: the whole `genemask npmi` run must be as fast as KMC, and numba's fixed start-up cost (import plus
 * loading cached machine code, ~0.4 s) alone is most of KMC's time on the benchmark input. This module has
 * no dependencies beyond the Python C API; arrays travel through the buffer protocol.
 *
 * Only max_n-grams are counted here (one increment per base). Shorter n-grams are derived in numpy by
 * marginalising over the last letter; what marginalising misses are the occurrences not followed by a base,
 * i.e. the suffixes of each run of ACGT (a "run end"), which this loop records in `tails`.
 *
 * A piece is a byte range [lo, hi) inside one contig's sequence bytes (newlines included), whose contig
 * bytes start at seg_lo in this buffer. A piece counts the n-grams whose last base lies in [lo, hi); the
 * run state before lo is rebuilt from the (at most max_n - 1) bases before it, or from the state carried
 * in from the previous buffer when the lookback reaches seg_lo. The tails of a run are recorded by the
 * piece holding the byte that ends the run (a non-ACGT letter, or the contig end). So pieces can be
 * counted in any order, on any thread, and sum exactly.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { BREAK = 4, SKIP = 5, BAD = 6 };
enum { PIECE_FIELDS = 6, MAX_N = 15 };
enum { BATCH = 4096, PREFETCH_AHEAD = 16 };

static uint8_t byte_class[256];

static void init_byte_class(void) {
    memset(byte_class, BAD, sizeof byte_class);
    const char *acgt = "ACGT";
    for (int i = 0; i < 4; i++) {
        byte_class[(uint8_t)acgt[i]] = (uint8_t)i;
        byte_class[(uint8_t)acgt[i] + 32] = (uint8_t)i;
    }
    /* The other IUPAC letters (and '-') are valid FASTA but end a run, as in genemask.fasta. */
    const char *other = "NRYSWKMBDHVU";
    for (const char *c = other; *c; c++) {
        byte_class[(uint8_t)*c] = BREAK;
        byte_class[(uint8_t)*c + 32] = BREAK;
    }
    byte_class['-'] = BREAK;
    byte_class['\n'] = byte_class['\r'] = byte_class['\t'] = byte_class[' '] = SKIP;
}

/* Offset of the n-grams of length n in the flat `tails` array: sum of 4^m for m < n, m >= 1. */
static inline int64_t tail_base(int n) { return (((int64_t)1 << (2 * n)) - 4) / 3; }

static inline void record_tails(uint32_t *tails, uint64_t code, int64_t run, int max_n) {
    int longest = run < max_n - 1 ? (int)run : max_n - 1;
    for (int n = 1; n <= longest; n++) {
        tails[tail_base(n) + (int64_t)(code & ((UINT64_C(1) << (2 * n)) - 1))]++;
    }
}

/* Run state (rolling code, run length capped at max_n) just before byte `lo`. */
static void state_before(const uint8_t *buf, int64_t seg_lo, int64_t lo, int max_n, uint64_t init_code,
                         int init_run, uint64_t *code_out, int *run_out) {
    int64_t p = lo;
    int bases = 0;
    int from_init = 1;
    while (p > seg_lo && bases < max_n - 1) {
        uint8_t c = byte_class[buf[p - 1]];
        if (c == SKIP) {
            p--;
        } else if (c < 4) {
            p--;
            bases++;
        } else {
            from_init = 0; /* a run break: nothing before it matters */
            break;
        }
    }
    if (bases >= max_n - 1) from_init = 0;
    uint64_t code = from_init ? init_code : 0;
    int run = from_init ? init_run : 0;
    for (int64_t i = p; i < lo; i++) {
        uint8_t c = byte_class[buf[i]];
        if (c < 4) {
            code = (code << 2) | c;
            if (run < max_n) run++;
        }
    }
    *code_out = code & ((UINT64_C(1) << (2 * max_n)) - 1);
    *run_out = run;
}

static int check_buffer(Py_buffer *view, Py_ssize_t item_size, Py_ssize_t items, const char *name) {
    if (view->len != item_size * items) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", name, item_size * items, view->len);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(count_pieces_doc,
             "count_pieces(buf, pieces, max_n, counts, tails, letters) -> int\n\n"
             "Count the max_n-grams ending in each piece (int64 rows: seg_lo, lo, hi, ends_contig, init_code,\n"
             "init_run) of `buf` into `counts` (uint32, 4**max_n) and the run-end suffixes into `tails` (uint32,\n"
             "(4**max_n - 4) // 3). `letters` (int64, 2 per piece) receives the ACGT and other-letter counts.\n"
             "Returns the index of the first byte that is not an IUPAC letter or whitespace, or -1.\n"
             "Releases the GIL.");

static PyObject *count_pieces(PyObject *self, PyObject *args) {
    Py_buffer buf, pieces, counts, tails, letters;
    int max_n;
    if (!PyArg_ParseTuple(args, "y*y*iw*w*w*", &buf, &pieces, &max_n, &counts, &tails, &letters)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n_pieces = pieces.len / (PIECE_FIELDS * (Py_ssize_t)sizeof(int64_t));
    if (max_n < 1 || max_n > MAX_N) {
        PyErr_Format(PyExc_ValueError, "max_n must be in 1..%d, got %d", MAX_N, max_n);
        goto release;
    }
    if (check_buffer(&pieces, PIECE_FIELDS * sizeof(int64_t), n_pieces, "pieces") ||
        check_buffer(&counts, sizeof(uint32_t), (Py_ssize_t)1 << (2 * max_n), "counts") ||
        check_buffer(&tails, sizeof(uint32_t), tail_base(max_n), "tails") ||
        check_buffer(&letters, 2 * sizeof(int64_t), n_pieces, "letters"))
        goto release;

    const uint8_t *bytes = buf.buf;
    const int64_t *piece = pieces.buf;
    uint32_t *count = counts.buf, *tail = tails.buf;
    int64_t *letter = letters.buf;
    const uint64_t mask = (UINT64_C(1) << (2 * max_n)) - 1;
    int64_t bad = -1;
    int out_of_range = 0;
    uint32_t *pending = PyMem_RawMalloc((BATCH + 1) * sizeof(uint32_t));
    if (!pending) {
        PyErr_NoMemory();
        goto release;
    }

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n_pieces && bad < 0; k++) {
        const int64_t *row = piece + k * PIECE_FIELDS;
        int64_t seg_lo = row[0], lo = row[1], hi = row[2];
        if (seg_lo < 0 || seg_lo > lo || lo > hi || hi > buf.len) {
            out_of_range = 1;
            break;
        }
        uint64_t code;
        int start_run;
        state_before(bytes, seg_lo, lo, max_n, (uint64_t)row[4] & mask, (int)row[5], &code, &start_run);
        /* Within the piece, `code` keeps every base (masked where used) and `run` is not capped. */
        int64_t run = start_run, other = 0, skipped = 0;
        int64_t i = lo;
        while (i < hi && bad < 0) {
            /* Decode a batch of bytes into the codes of the complete max_n-grams, then increment their
             * counts with software prefetch, which hides the cache misses of a count array larger than
             * the caches (2-4x faster for max_n >= 11). */
            int64_t m = 0;
            int64_t stop = hi - i > BATCH ? i + BATCH : hi;
            while (i < stop && bad < 0) {
                /* Fast path (20% less time): 8 bytes, all ACGT, in a run already max_n - 1 long, so every
                 * byte completes an n-gram: no branch per byte. */
                while (i + 8 <= stop && run >= max_n - 1) {
                    const uint8_t *b = bytes + i;
                    uint8_t c[8];
                    uint8_t any = 0;
                    for (int j = 0; j < 8; j++) any |= c[j] = byte_class[b[j]];
                    if (any > 3) break;
                    for (int j = 0; j < 8; j++) {
                        code = (code << 2) | c[j];
                        pending[m + j] = (uint32_t)(code & mask);
                    }
                    m += 8;
                    run += 8;
                    i += 8;
                }
                /* Slow path, one byte at a time, for the next 8 bytes: run starts, newlines, other letters. */
                int64_t slow_stop = stop - i > 8 ? i + 8 : stop;
                for (; i < slow_stop; i++) {
                    uint8_t c = byte_class[bytes[i]];
                    if (c < 4) {
                        code = (code << 2) | c;
                        run++;
                        pending[m] = (uint32_t)(code & mask); /* kept only when it completes an n-gram */
                        m += run >= max_n;
                    } else if (c == SKIP) {
                        skipped++;
                    } else if (c == BREAK) {
                        other++;
                        record_tails(tail, code, run, max_n);
                        run = 0;
                    } else {
                        bad = i;
                        break;
                    }
                }
            }
            int64_t j = 0;
            for (; j + PREFETCH_AHEAD < m; j++) {
                __builtin_prefetch(&count[pending[j + PREFETCH_AHEAD]], 1, 0);
                count[pending[j]]++;
            }
            for (; j < m; j++) count[pending[j]]++;
        }
        if (bad < 0 && row[3]) record_tails(tail, code, run, max_n);
        letter[2 * k] = (bad < 0 ? hi : bad) - lo - skipped - other;
        letter[2 * k + 1] = other;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(pending);

    if (out_of_range)
        PyErr_SetString(PyExc_ValueError, "piece out of range (need 0 <= seg_lo <= lo <= hi <= len(buf))");
    else
        result = PyLong_FromLongLong(bad);
release:
    PyBuffer_Release(&buf);
    PyBuffer_Release(&pieces);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&tails);
    PyBuffer_Release(&letters);
    return result;
}

PyDoc_STRVAR(run_state_doc,
             "run_state(buf, seg_lo, pos, max_n, init_code, init_run) -> (code, run)\n\n"
             "The rolling code and capped run length just before byte `pos` of a contig whose bytes start at\n"
             "`seg_lo`, starting from (init_code, init_run) at seg_lo: the state to carry into the next buffer.");

static PyObject *run_state(PyObject *self, PyObject *args) {
    Py_buffer buf;
    long long seg_lo, pos, init_code;
    int max_n, init_run;
    if (!PyArg_ParseTuple(args, "y*LLiLi", &buf, &seg_lo, &pos, &max_n, &init_code, &init_run)) return NULL;
    PyObject *result = NULL;
    if (max_n < 1 || max_n > MAX_N || seg_lo < 0 || seg_lo > pos || pos > buf.len) {
        PyErr_SetString(PyExc_ValueError, "run_state: bad max_n or position");
    } else {
        uint64_t code;
        int run;
        state_before(buf.buf, seg_lo, pos, max_n, (uint64_t)init_code & ((UINT64_C(1) << (2 * max_n)) - 1),
                     init_run, &code, &run);
        result = Py_BuildValue("(Ki)", (unsigned long long)code, run);
    }
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"count_pieces", count_pieces, METH_VARARGS, count_pieces_doc},
    {"run_state", run_state, METH_VARARGS, run_state_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_ngramcount",
    .m_doc = "Compiled hot loop of genemask.ngrams.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__ngramcount(void) {
    init_byte_class();
    return PyModule_Create(&module);
}
