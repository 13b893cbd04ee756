# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled passes of the contamination fast path (see ``native.py``).

Two passes over a block's record-major string slots (``width`` slots per record, slot
``s`` holding ``values[slot_off[s]:slot_off[s + 1]]``, null slots marked in ``valid``):

* ``check_records``: strict UTF-8 validation (what ``pyarrow.Array.validate(full=True)``
  accepts: no overlong forms, no surrogates, nothing above U+10FFFF) and, per record,
  whether one of its code points is marked in ``unsafe`` (the characters where the fast
  path could tokenise differently from ``str.lower().split()``);
* ``tokenize``: splits each record's slots on ASCII whitespace (the characters
  ``str.split()`` splits on below U+0080) and looks every token up in an open-addressing
  table of the eval vocabulary, giving the token's key (0 when it is not in the
  vocabulary), optionally lower-casing ASCII letters on the way.

Records with a non-ASCII whitespace or any other unsafe character are skipped by the
caller's flags; the rest tokenise exactly like the reference.

Both passes read eight bytes at a time where they can (runs of ASCII in validation,
token ends, hashing and comparing tokens); on a big-endian machine they read bytes one
by one.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

import numpy as np

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #define LLM_WORDS 1
    #elif defined(_M_X64) || defined(_M_IX86) || defined(_M_ARM64)
    #define LLM_WORDS 1
    #else
    #define LLM_WORDS 0
    #endif
    static inline uint64_t llm_load(const uint8_t* p) { uint64_t w; memcpy(&w, p, 8); return w; }
    static inline int llm_first_byte(uint64_t x) {  /* x != 0: its lowest non-zero byte */
    #if defined(__GNUC__) || defined(__clang__)
        return __builtin_ctzll(x) >> 3;
    #else
        int n = 0; while (!(x & 0xFF)) { x >>= 8; n++; } return n;
    #endif
    }
    """
    int LLM_WORDS
    uint64_t llm_load(const uint8_t* p) noexcept nogil
    int llm_first_byte(uint64_t x) noexcept nogil

cdef uint64_t ONES = 0x0101010101010101ULL
cdef uint64_t HIGH = 0x8080808080808080ULL
cdef uint64_t MUL = 0x9E3779B97F4A7C15ULL
cdef Py_ssize_t MAX_WORDS = 32  # tokens up to 256 bytes keep their words for the compare


cdef void* _grow(void* buf, Py_ssize_t* cap) noexcept nogil:
    """``buf`` (of ``*cap`` 8-byte items) reallocated to twice the items, ``*cap`` updated;
    NULL when memory is short (``buf`` is then still the caller's to free)."""
    cdef void* grown = realloc(buf, 2 * cap[0] * 8)
    if grown != NULL:
        cap[0] = 2 * cap[0]
    return grown


cdef inline bint _space(uint8_t c) noexcept nogil:
    # str.split()'s whitespace below U+0080: \t \n \v \f \r, \x1c-\x1f and the space
    return c == 32 or (9 <= c <= 13) or (28 <= c <= 31)


cdef inline uint64_t _lower_word(uint64_t w) noexcept nogil:
    """ASCII capitals of the eight bytes lower-cased; other bytes unchanged."""
    cdef uint64_t seven = w & ~HIGH
    cdef uint64_t from_a = seven + 0x3F * ONES   # high bit: byte >= 'A'
    cdef uint64_t past_z = seven + 0x25 * ONES   # high bit: byte > 'Z'
    return w | (((from_a ^ past_z) & ~w & HIGH) >> 2)


cdef inline uint64_t _word(const uint8_t* p, Py_ssize_t n, const uint8_t* end,
                           bint lower) noexcept nogil:
    """The ``n`` (1-8) bytes at ``p`` as a little-endian word, the rest zero; never reads
    at or past ``end``."""
    cdef uint64_t w = 0
    cdef Py_ssize_t k
    if LLM_WORDS and p + 8 <= end:
        w = llm_load(p)
        if n < 8:
            w &= (1ULL << (8 * n)) - 1
    else:
        for k in range(n):
            w |= (<uint64_t>p[k]) << (8 * k)
    if lower:
        w = _lower_word(w)
    return w


cdef inline uint64_t _mix(uint64_t h, uint64_t w) noexcept nogil:
    h = (h ^ w) * MUL
    return h ^ (h >> 29)


cdef inline uint64_t _hash(const uint8_t* p, Py_ssize_t n, const uint8_t* end, bint lower,
                           uint64_t* words) noexcept nogil:
    """The hash of ``n`` bytes (the first MAX_WORDS words kept in ``words``)."""
    cdef uint64_t h = <uint64_t>n * MUL
    cdef uint64_t w
    cdef Py_ssize_t k = 0, i = 0, take
    while i < n:
        take = n - i if n - i < 8 else 8
        w = _word(p + i, take, end, lower)
        if k < MAX_WORDS:
            words[k] = w
        k += 1
        h = _mix(h, w)
        i += 8
    return h ^ (h >> 32)


def build_table(const int64_t[::1] vocab_off, const uint8_t[::1] vocab_bytes):
    """An open-addressing table of the vocabulary: ``cap`` words (a power of two, at most
    half full), each the high half of an entry's hash over its number plus one (0: an
    empty slot); 8 bytes a slot keep the table of 30,000 tokens in 512 KB. Entry ``v`` is ``vocab_bytes[vocab_off[v]:vocab_off[v+1]]``
    (the bytes end with 8 of padding, read by the compare)."""
    cdef Py_ssize_t n = vocab_off.shape[0] - 1
    cdef Py_ssize_t cap = 16
    while cap < 2 * n + 2:
        cap *= 2
    if n >= 0xFFFFFFFF:
        raise ValueError("build_table: more than 2**32 - 2 vocabulary entries")
    table_arr = np.zeros(cap, dtype=np.uint64)
    cdef uint64_t[::1] table = table_arr
    cdef uint64_t mask = cap - 1
    cdef uint64_t h, slot
    cdef uint64_t words[32]
    cdef Py_ssize_t v
    cdef const uint8_t* vp = &vocab_bytes[0] if vocab_bytes.shape[0] else NULL
    cdef const uint8_t* vend = vp + vocab_bytes.shape[0]
    with nogil:
        for v in range(n):
            h = _hash(vp + vocab_off[v], vocab_off[v + 1] - vocab_off[v], vend, False, words)
            slot = h & mask
            while table[slot]:
                slot = (slot + 1) & mask
            table[slot] = (h & 0xFFFFFFFF00000000ULL) | (<uint64_t>v + 1)
    return table_arr


def check_records(const uint8_t[::1] values, const int64_t[::1] slot_off, Py_ssize_t width,
                  const uint8_t[::1] valid, const uint8_t[::1] unsafe):
    """Per record, 1 if one of its valid slots holds a code point marked in ``unsafe``
    (``0x110000`` entries), else 0; None if a valid slot is not strict UTF-8.

    ``valid`` is empty when every slot is valid, else one byte per slot.
    """
    cdef Py_ssize_t n_slots = slot_off.shape[0] - 1
    cdef Py_ssize_t n_rec = n_slots // width if width > 0 else 0
    flags_arr = np.zeros(n_rec, dtype=np.uint8)
    cdef uint8_t[::1] flags = flags_arr
    cdef bint all_valid = valid.shape[0] == 0
    cdef Py_ssize_t s, i, b, n, c0
    cdef uint8_t c
    cdef uint64_t cp, w
    cdef bint bad = False
    cdef const uint8_t* p = &values[0] if values.shape[0] else NULL
    # eight ASCII bytes at once when no printable ASCII character is unsafe (the unsafe
    # ones, NUL and \x1c-\x1f, are then found as bytes below 32)
    cdef bint words = LLM_WORDS
    for c0 in range(32, 128):
        if unsafe[c0]:
            words = False
    with nogil:
        for s in range(n_rec * width):
            if not all_valid and not valid[s]:
                continue
            i = slot_off[s]
            b = slot_off[s + 1]
            while i < b:
                if words and i + 8 <= b:
                    w = llm_load(p + i)
                    if not (w & HIGH) and not ((w - 32 * ONES) & ~w & HIGH):
                        i += 8  # eight ASCII bytes, none below 32
                        continue
                c = p[i]
                if c < 0x80:
                    if unsafe[c]:
                        flags[s // width] = 1
                    i += 1
                    continue
                if c < 0xC2:  # a continuation byte, or an overlong two-byte form
                    bad = True
                    break
                if c < 0xE0:  # two bytes: U+0080-U+07FF
                    if i + 1 >= b or (p[i + 1] & 0xC0) != 0x80:
                        bad = True
                        break
                    cp = ((c & 0x1F) << 6) | (p[i + 1] & 0x3F)
                    n = 1
                elif c < 0xF0:  # three bytes: U+0800-U+FFFF but the surrogates
                    if i + 2 >= b or (p[i + 1] & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80:
                        bad = True
                        break
                    cp = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F)
                    if cp < 0x800 or 0xD800 <= cp <= 0xDFFF:
                        bad = True
                        break
                    n = 2
                elif c < 0xF5:  # four bytes: U+10000-U+10FFFF
                    if (i + 3 >= b or (p[i + 1] & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80
                            or (p[i + 3] & 0xC0) != 0x80):
                        bad = True
                        break
                    cp = (((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12)
                          | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F))
                    if cp < 0x10000 or cp > 0x10FFFF:
                        bad = True
                        break
                    n = 3
                else:
                    bad = True
                    break
                if unsafe[cp]:
                    flags[s // width] = 1
                i += n + 1
            if bad:
                break
    if bad:
        return None
    return flags_arr


cdef inline Py_ssize_t _token_end(const uint8_t* p, Py_ssize_t j, Py_ssize_t b) noexcept nogil:
    """The first whitespace at or after ``j`` (``b`` if none)."""
    cdef uint64_t w, low
    while j < b:
        if LLM_WORDS and j + 8 <= b:
            w = llm_load(p + j)
            # bytes below 33 (a whitespace, or another control byte); the lowest one
            # flagged is exact (a borrow only runs upward from a flagged byte)
            low = (w - 33 * ONES) & ~w & HIGH
            if not low:
                j += 8
                continue
            j += llm_first_byte(low)
            if _space(p[j]):
                return j
            j += 1
            continue
        if _space(p[j]):
            return j
        j += 1
    return b


def tokenize(const uint8_t[::1] values, const int64_t[::1] slot_off, Py_ssize_t width,
             const uint8_t[::1] valid, const uint8_t[::1] skip, bint lower,
             const uint64_t[::1] table, const int64_t[::1] vocab_off,
             const uint8_t[::1] vocab_bytes, const uint64_t[::1] keys, bint separate=False):
    """``(ids, counts)``: the key of every token of every record not marked in ``skip``
    (empty: none is), records in order, and each record's number of tokens (0 for the
    skipped ones). Tokens are split on ASCII whitespace; ``lower`` lower-cases ASCII
    letters before the look-up. ``vocab_bytes`` ends with 8 bytes of padding.
    ``separate``: the key 1 follows every record but the last (skipped ones too).

    ``ids`` is a view of an array sized for the most tokens the bytes can hold (a token
    and its whitespace take two bytes at least): no growth, no copy, and only the pages
    written are ever touched."""
    cdef Py_ssize_t n_slots = slot_off.shape[0] - 1
    cdef Py_ssize_t n_rec = n_slots // width if width > 0 else 0
    counts_arr = np.zeros(n_rec, dtype=np.int64)
    cdef int64_t[::1] counts = counts_arr
    cdef bint all_valid = valid.shape[0] == 0
    cdef bint skip_none = skip.shape[0] == 0
    cdef uint64_t mask = table.shape[0] - 1
    ids_arr = np.empty(values.shape[0] // 2 + n_slots + n_rec + 1, dtype=np.uint64)
    cdef uint64_t[::1] out = ids_arr
    cdef Py_ssize_t m = 0, r, s, i, j, b, k, n, va, start_m, nw
    cdef const uint8_t* p = &values[0] if values.shape[0] else NULL
    cdef const uint8_t* end = p + values.shape[0]
    cdef const uint8_t* vp = &vocab_bytes[0] if vocab_bytes.shape[0] else NULL
    cdef const uint8_t* vend = vp + vocab_bytes.shape[0]
    cdef uint64_t h, slot, key, entry, tag
    cdef uint64_t words[32]
    cdef bint same
    with nogil:
        for r in range(n_rec):
            if separate and r:
                out[m] = 1
                m += 1
            if not skip_none and skip[r]:
                continue
            start_m = m
            for s in range(r * width, (r + 1) * width):
                if not all_valid and not valid[s]:
                    continue
                i = slot_off[s]
                b = slot_off[s + 1]
                while i < b:
                    if _space(p[i]):
                        i += 1
                        continue
                    j = _token_end(p, i + 1, b)
                    n = j - i
                    h = _hash(p + i, n, end, lower, words)
                    slot = h & mask
                    key = 0
                    while True:
                        entry = table[slot]
                        if not entry:
                            break
                        tag = entry & 0xFFFFFFFF00000000ULL
                        entry &= 0xFFFFFFFFULL
                        if tag == (h & 0xFFFFFFFF00000000ULL) and \
                                vocab_off[entry] - vocab_off[entry - 1] == n:
                            va = vocab_off[entry - 1]
                            same = True
                            nw = (n + 7) >> 3
                            if nw <= MAX_WORDS:
                                for k in range(nw):
                                    if _word(vp + va + 8 * k, n - 8 * k if n - 8 * k < 8 else 8,
                                             vend, False) != words[k]:
                                        same = False
                                        break
                            else:
                                for k in range(n):
                                    if vp[va + k] != (p[i + k] + 32 if lower and 65 <= p[i + k] <= 90
                                                      else p[i + k]):
                                        same = False
                                        break
                            if same:
                                key = keys[entry - 1]
                                break
                        slot = (slot + 1) & mask
                    out[m] = key
                    m += 1
                    i = j
            counts[r] = m - start_m
    return ids_arr[:m], counts_arr


cdef inline uint64_t _has_byte(uint64_t w, uint64_t byte) noexcept nogil:
    """Non-zero when one of the eight bytes of ``w`` equals ``byte``."""
    cdef uint64_t x = w ^ (byte * ONES)
    return (x - ONES) & ~x & HIGH


def jsonl_lines(const uint8_t[::1] data):
    """``(record_lines, n_lines)`` of a JSONL block, or None when the block does not
    qualify for the fast path: a raw control byte other than the newline, a line that
    neither is empty nor starts with ``{``, or a ``}`` followed (after spaces) by
    something other than ``,``, ``}``, ``]`` or a newline (a second value on the line,
    or a string holding such text, which only costs the fallback). ``record_lines`` are
    the 0-based numbers of the lines that start with ``{``; a last line without a
    newline counts."""
    cdef Py_ssize_t n = data.shape[0]
    cdef const uint8_t* p = &data[0] if n else NULL
    cdef Py_ssize_t cap = 1024, m = 0, line = 0, i = 0, j
    cdef int64_t* out = <int64_t*>malloc(cap * sizeof(int64_t))
    cdef int64_t* grown
    if out == NULL:
        raise MemoryError()
    cdef uint64_t w
    cdef uint8_t c
    cdef bint ok = True, failed = False, at_start = True
    with nogil:
        while i < n:
            if at_start:
                at_start = False
                c = p[i]
                if c == 123:  # "{"
                    if m == cap:
                        grown = <int64_t*>_grow(out, &cap)
                        if grown == NULL:
                            failed = True
                            break
                        out = grown
                    out[m] = line
                    m += 1
                elif c != 10:
                    ok = False
                    break
            if LLM_WORDS and i + 8 <= n:
                w = llm_load(p + i)
                if not ((w - 32 * ONES) & ~w & HIGH) and not _has_byte(w, 125):
                    i += 8  # no control byte, no "}"
                    continue
            c = p[i]
            if c == 10:
                line += 1
                at_start = True
            elif c < 32:
                ok = False
                break
            elif c == 125:  # "}": what follows the spaces after it
                j = i + 1
                while j < n and p[j] == 32:
                    j += 1
                if j < n and not (p[j] == 44 or p[j] == 125 or p[j] == 93 or p[j] == 10):
                    ok = False
                    break
            i += 1
    if failed:
        free(out)
        raise MemoryError()
    if not ok:
        free(out)
        return None
    if n and p[n - 1] != 10:
        line += 1  # the last line has no newline
    lines_arr = np.empty(m, dtype=np.int64)
    cdef int64_t[::1] lines = lines_arr
    if m:
        memcpy(&lines[0], out, m * sizeof(int64_t))
    free(out)
    return lines_arr, line
