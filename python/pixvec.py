"""pixvec for Python: the pixvec image-vector database through ctypes.

pixvec stores, for every image it is given, a unit-length embedding in one
database folder (an LMDB environment), and answers nearest-neighbour
queries, near-duplicate groups and exports from it. This module is a thin
layer over libpixvec.so (include/pixvec.h): no compiled extension, only
ctypes and numpy. Every C structure it uses is mirrored below field for
field as pixvec.h lays it out; every C allocation is released with its
pv_*_free function before a call returns.

    import pixvec
    with pixvec.Database.create("train.pvdb") as db:        # pixels embedder
        stats = db.add("data/train")                         # folders walked
        for path, reason in stats.failures:
            print("skipped", path, reason)
        hits = db.query("data/train/cat/001.png", k=5)       # [(id, score, path)]
        groups = db.dups()                                   # near-duplicates
        ids, paths, vectors = db.to_numpy()                  # (N,), [N], (N, D)

The library is found through the environment variable PIXVEC_LIB (a path to
libpixvec.so), else beside an installed copy of this module
(PREFIX/lib/python3/dist-packages/pixvec.py: PREFIX/lib, then
PREFIX/lib/<multiarch>), else through ctypes.util.find_library("pixvec")
and the soname libpixvec.so.0.

Errors: every failing call raises pixvec.Error (or a subclass: NotFound,
Exists, NotADatabase, ...) whose message is pixvec's own (the decoder's
words and the file's path, say) and whose .code is the PV_E* value.

Threads: a Database may be shared between threads; its calls are
serialised by a lock (pixvec handles are one-thread-at-a-time). The C calls
release the GIL, so two Database objects (on the same or different
folders) work in parallel. Any number of processes may read a database
while one writes it.
"""

import collections
import ctypes
import ctypes.util
import os
import signal
import sysconfig
import tempfile
import threading

import numpy as np

__all__ = [
    "Database", "open", "import_vectors", "strerror", "library_path",
    "Error", "InvalidArgument", "NotADatabase", "NewerFormat", "Exists",
    "NotFound", "DecodeError", "UnknownFormat", "TooBig", "EmbedderMismatch",
    "ReadOnly", "Interrupted",
    "Hit", "Item", "DupMember", "DupGroup", "Dups", "AddStats", "ExportStats",
]

# ---- error codes (pixvec.h) -------------------------------------------------

PV_OK = 0
PV_EINVAL = -1
PV_ENOMEM = -2
PV_EIO = -3
PV_ENOTDB = -4
PV_ENEWER = -5
PV_EEXIST = -6
PV_ENOTFOUND = -7
PV_EDECODE = -8
PV_EFORMAT = -9
PV_ETOOBIG = -10
PV_EEMBEDDER = -11
PV_ESTORE = -12
PV_ECORRUPT = -13
PV_EEMPTY = -14
PV_ERDONLY = -15
PV_ENUMERIC = -16
PV_EINTR = -17

PV_OPEN_RDONLY = 1
_ERRLEN = 2048

_VECTOR_KINDS = ("f32", "f16", "i8", "f16-only", "i8-only")
_DUPS_MODES = {"auto": 0, "exact": 1, "approx": 2, "approximate": 2}
_KEEP = {"largest": 0, "oldest": 1, "newest": 2}
_EXPORT_FORMATS = {"npy": 0, "fvecs": 1, "jsonl": 2}


class Error(Exception):
    """A pixvec call failed. str(e) is pixvec's message; e.code the PV_E* code."""

    def __init__(self, message, code):
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidArgument(Error, ValueError):
    """PV_EINVAL: a bad argument or option."""


class NotADatabase(Error):
    """PV_ENOTDB: the folder holds no pixvec database."""


class NewerFormat(Error):
    """PV_ENEWER: the database was written by a newer pixvec."""


class Exists(Error, FileExistsError):
    """PV_EEXIST: a database or an output file exists already."""


class NotFound(Error, LookupError):
    """PV_ENOTFOUND: no such item or file."""


class DecodeError(Error):
    """PV_EDECODE: the image is corrupt or truncated."""


class UnknownFormat(Error):
    """PV_EFORMAT: not an image format pixvec reads."""


class TooBig(Error):
    """PV_ETOOBIG: an image or file beyond pixvec's limits."""


class EmbedderMismatch(Error):
    """PV_EEMBEDDER: the database uses another embedder (or cannot embed)."""


class ReadOnly(Error):
    """PV_ERDONLY: the handle was opened read-only."""


class Interrupted(Error):
    """PV_EINTR: the call was interrupted."""


_ERROR_CLASSES = {
    PV_EINVAL: InvalidArgument, PV_ENOTDB: NotADatabase, PV_ENEWER: NewerFormat,
    PV_EEXIST: Exists, PV_ENOTFOUND: NotFound, PV_EDECODE: DecodeError,
    PV_EFORMAT: UnknownFormat, PV_ETOOBIG: TooBig, PV_EEMBEDDER: EmbedderMismatch,
    PV_ERDONLY: ReadOnly, PV_EINTR: Interrupted,
}


def _error(code, message):
    return _ERROR_CLASSES.get(code, Error)(message, code)


# ---- the library -------------------------------------------------------------

def _candidates():
    env = os.environ.get("PIXVEC_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    # PREFIX/lib/python3/dist-packages/pixvec.py -> PREFIX
    if os.path.basename(here) in ("dist-packages", "site-packages"):
        prefix = os.path.dirname(os.path.dirname(os.path.dirname(here)))
        arch = sysconfig.get_config_var("MULTIARCH")
        dirs = [os.path.join(prefix, "lib")]
        if arch:
            dirs.append(os.path.join(prefix, "lib", arch))
        dirs.append(os.path.join(prefix, "lib64"))
        out += [os.path.join(d, "libpixvec.so.0") for d in dirs]
        out = [p for p in out if os.path.exists(p)]
    found = ctypes.util.find_library("pixvec")
    if found:
        out.append(found)
    out.append("libpixvec.so.0")
    return out


def _load():
    errors = []
    for cand in _candidates():
        try:
            return ctypes.CDLL(cand), cand
        except OSError as e:
            errors.append("%s: %s" % (cand, e))
    raise ImportError("pixvec: cannot load libpixvec.so (set PIXVEC_LIB to its path): "
                      + "; ".join(errors))


_lib, _lib_path = _load()
_lib.pv_format_name.restype = ctypes.c_char_p
_lib.pv_format_name.argtypes = [ctypes.c_int]


def _count_formats():
    """PV_NFORMATS of the library loaded: pv_format_name names the formats
    1 .. PV_NFORMATS-1 and says "unknown" from there on. pv_info's last
    field is an array of that many counters, so the mirror follows the
    library even when a format is added."""
    n = 1
    while n < 256 and _lib.pv_format_name(n) != b"unknown":
        n += 1
    return n


PV_NFORMATS = _count_formats()


# ---- C structures, exactly as include/pixvec.h lays them out ---------------

_u8, _i32, _u32 = ctypes.c_uint8, ctypes.c_int, ctypes.c_uint32
_u64, _i64 = ctypes.c_uint64, ctypes.c_int64
_f32, _f64, _size = ctypes.c_float, ctypes.c_double, ctypes.c_size_t
_str = ctypes.c_char_p


class _EmbedderOpts(ctypes.Structure):
    _fields_ = [("name", _str), ("size", _i32), ("rgb", _i32), ("no_mirror", _i32),
                ("pool_sum", _i32), ("model", _str)]


class _IndexOpts(ctypes.Structure):
    _fields_ = [("M", _i32), ("ef_construction", _i32), ("vectors", _i32),
                ("compact_only", _i32)]


class _Info(ctypes.Structure):
    _fields_ = [("items", _u64), ("graph_nodes", _u64), ("hnsw_m", _u32),
                ("hnsw_ef_construction", _u32), ("graph_levels", _u32), ("deleted", _u64),
                ("next_id", _u64), ("dim", _u32), ("format", _u32), ("chunk", _u32),
                ("embedder", ctypes.c_char * 64), ("embedder_desc", ctypes.c_char * 96),
                ("disk_bytes", _u64), ("map_bytes", _u64), ("ivf_nlist", _u32),
                ("cluster_k", _u32), ("dups_threshold", _f32), ("vectors", _i32),
                ("coded", _u64), ("code_bytes", _u32), ("compact_only", _i32),
                ("float32_dropped", _i32), ("formats", _u64 * PV_NFORMATS)]


class _AddStats(ctypes.Structure):
    _fields_ = [("seen", _u64), ("added", _u64), ("updated", _u64), ("unchanged", _u64),
                ("moved", _u64), ("failed", _u64), ("forgotten", _u64), ("kept", _u64)]


_PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _u64, _u64)
_ON_ERROR_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, _i32, ctypes.c_char_p)


class _AddOpts(ctypes.Structure):
    _fields_ = [("threads", _i32), ("progress", _PROGRESS_FN), ("on_error", _ON_ERROR_FN),
                ("ctx", ctypes.c_void_p), ("cancel", ctypes.POINTER(_i32)),
                ("commit_seconds", _f64)]


class _Item(ctypes.Structure):
    _fields_ = [("id", _u32), ("path", ctypes.c_void_p), ("size", _u64), ("mtime_ns", _i64),
                ("width", _u32), ("height", _u32), ("hash", _u8 * 16), ("format", _i32)]


class _Hit(ctypes.Structure):
    _fields_ = [("id", _u32), ("score", _f32), ("path", ctypes.c_void_p)]


class _QueryOpts(ctypes.Structure):
    _fields_ = [("k", _i32), ("exact", _i32), ("ef", _i32), ("ids_only", _i32), ("ivf", _i32),
                ("nprobe", _i32), ("no_rerank", _i32)]


class _DupMember(ctypes.Structure):
    _fields_ = [("item", _Item), ("score", _f32), ("exact", _i32), ("keep", _i32)]


class _DupGroup(ctypes.Structure):
    _fields_ = [("members", ctypes.POINTER(_DupMember)), ("n", _size), ("weakest", _f32),
                ("all_exact", _i32)]


class _DupsOpts(ctypes.Structure):
    _fields_ = [("threshold", _f32), ("mode", _i32), ("keep", _i32), ("prefer", _str),
                ("across_a", _str), ("across_b", _str), ("neighbours", _u32), ("ef", _u32),
                ("fraction", _f32), ("want_pairs", _i32)]


class _DupPair(ctypes.Structure):
    _fields_ = [("a", _u32), ("b", _u32), ("score", _f32)]


class _Dups(ctypes.Structure):
    _fields_ = [("groups", ctypes.POINTER(_DupGroup)), ("ngroups", _size), ("pairs", _u64),
                ("images", _u64), ("dropped", _u64), ("exact_images", _u64),
                ("scanned", _u64), ("threshold", _f32), ("approximate", _i32),
                ("seconds", _f64), ("gflops", _f64), ("pair", ctypes.POINTER(_DupPair)),
                ("nn_score", ctypes.POINTER(_f32))]


class _ExportOpts(ctypes.Structure):
    _fields_ = [("format", _i32), ("force", _i32)]


class _ExportStats(ctypes.Structure):
    _fields_ = [("items", _u64), ("dim", _u32), ("dequantized", _i32)]


class _ImportOpts(ctypes.Structure):
    _fields_ = [("normalize", _i32)]


def _declare(lib):
    P, V = ctypes.POINTER, ctypes.c_void_p
    db = V  # pv_db *, opaque
    sigs = {
        "pv_strerror": (_str, [_i32]),
        "pv_format_name": (_str, [_i32]),
        "pv_db_create": (_i32, [_str, P(_EmbedderOpts), P(_IndexOpts), P(V), _str, _size]),
        "pv_db_open": (_i32, [_str, _i32, P(V), _str, _size]),
        "pv_db_close": (None, [db]),
        "pv_db_errmsg": (_str, [db]),
        "pv_db_interrupt": (None, [db]),
        "pv_db_info": (_i32, [db, P(_Info)]),
        "pv_db_verify": (_i32, [db]),
        "pv_add": (_i32, [db, P(_str), _size, P(_AddOpts), P(_AddStats)]),
        "pv_remove": (_i32, [db, _str]),
        "pv_vacuum": (_i32, [db]),
        "pv_items": (_i32, [db, P(P(_Item)), P(_size)]),
        "pv_items_free": (None, [P(_Item), _size]),
        "pv_query_image": (_i32, [db, _str, P(_QueryOpts), P(P(_Hit)), P(_size)]),
        "pv_query_vector": (_i32, [db, P(_f32), _u32, P(_QueryOpts), P(P(_Hit)), P(_size)]),
        "pv_query_text": (_i32, [db, _str, P(_QueryOpts), P(P(_Hit)), P(_size)]),
        "pv_hits_free": (None, [P(_Hit), _size]),
        "pv_find_dups": (_i32, [db, P(_DupsOpts), P(P(_Dups))]),
        "pv_dups_free": (None, [P(_Dups)]),
        "pv_db_export": (_i32, [db, _str, P(_ExportOpts), P(_ExportStats)]),
        "pv_paths_read": (_i32, [_str, P(P(_str)), P(_size), _str, _size]),
        "pv_paths_free": (None, [P(_str), _size]),
        "pv_import_vectors": (_i32, [db, P(_f32), _size, _u32, P(_str), P(_ImportOpts),
                                     P(_size)]),
        "pv_embed_file": (_i32, [db, _str, P(_f32), _u32]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


_declare(_lib)


_check_signals = ctypes.pythonapi.PyErr_CheckSignals
_check_signals.restype = ctypes.c_int
_check_signals.argtypes = []


def library_path():
    """The libpixvec.so this module loaded."""
    return _lib_path


def strerror(code):
    """pixvec's text for a PV_E* code."""
    return _lib.pv_strerror(code).decode("utf-8", "replace")


# ---- helpers -------------------------------------------------------------------

def _enc(path):
    """A path (str, bytes or os.PathLike) as the bytes the C library takes."""
    return os.fsencode(path)


def _dec(b):
    return os.fsdecode(b) if b is not None else None


def _cstr(ptr):
    """A char * held as c_void_p, decoded as a file name (None for NULL)."""
    return os.fsdecode(ctypes.string_at(ptr)) if ptr else None


def _err_buf_message(code, buf):
    m = buf.value
    return m.decode("utf-8", "replace") if m else strerror(code)


Hit = collections.namedtuple("Hit", "id score path")
Hit.__doc__ = "A query answer: item id, cosine similarity in [-1, 1], stored path."

Item = collections.namedtuple("Item", "id path size mtime_ns width height hash format")
Item.__doc__ = ("A stored image: id, absolute path, file size, mtime (ns since the epoch), "
                "width and height as displayed, XXH3-128 of its bytes (32 hex digits), "
                "image format name ('PNG', 'JPEG', ..., 'unknown').")

DupMember = collections.namedtuple("DupMember", "id path score keep")
DupMember.__doc__ = ("A member of a near-duplicate group: item id, path, cosine "
                     "similarity to the group's representative (1 for itself), and "
                     "keep (True for the representative and files of the preferred "
                     "folder; False: on the drop list).")

ExportStats = collections.namedtuple("ExportStats", "items dim dequantized")


class DupGroup(list):
    """One group of near-duplicates: a list of DupMember, the representative
    (always kept) first, the others by score, highest first. Attributes:
    weakest (the lowest score in the group), all_exact (every member is a
    byte-identical copy of the representative), exact (a tuple of booleans:
    which members are byte-identical to it)."""

    def __init__(self, members, weakest, all_exact, exact):
        super().__init__(members)
        self.weakest = weakest
        self.all_exact = all_exact
        self.exact = exact


class Dups(list):
    """The result of Database.dups: a list of DupGroup (largest first), and
    the run's numbers: threshold (the one used), pairs (candidate pairs at
    or above it), images (in groups), dropped (members with keep False),
    scanned, approximate (candidates from the HNSW graph), seconds."""

    def __init__(self, groups, **numbers):
        super().__init__(groups)
        for k, v in numbers.items():
            setattr(self, k, v)

    @property
    def drop(self):
        """The paths of every member with keep False (the files to leave out)."""
        return [m.path for g in self for m in g if not m.keep]

    @property
    def drop_ids(self):
        """The ids of every member with keep False."""
        return [m.id for g in self for m in g if not m.keep]


class AddStats:
    """What Database.add did: seen, added, updated, unchanged, moved, failed,
    forgotten, kept (counts, as pv_add_stats), and failures: a list of
    (path, reason) for every file that could not be added."""

    __slots__ = ("seen", "added", "updated", "unchanged", "moved", "failed", "forgotten",
                 "kept", "failures")

    def __init__(self, st, failures):
        for f, _ in _AddStats._fields_:
            setattr(self, f, int(getattr(st, f)))
        self.failures = failures

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __getitem__(self, key):
        return getattr(self, key)

    def __repr__(self):
        return "AddStats(%s)" % ", ".join("%s=%r" % (k, getattr(self, k))
                                          for k in self.__slots__)


def _f32_short(x):
    """A float32 value as the shortest decimal that reads back as it (0.98,
    not 0.9800000190734863), as `pixvec info --json` prints it."""
    return float(str(np.float32(x)))


def _vector(v, what="vector"):
    a = np.asarray(v)
    if a.ndim != 1:
        raise InvalidArgument("%s: a 1-D array of floats, not shape %s" % (what, a.shape),
                              PV_EINVAL)
    if a.dtype.kind not in "fiu":
        raise InvalidArgument("%s: numbers, not dtype %s" % (what, a.dtype), PV_EINVAL)
    return np.ascontiguousarray(a, dtype=np.float32)


def _fptr(a):
    return a.ctypes.data_as(ctypes.POINTER(_f32))


# ---- the database --------------------------------------------------------------

class _SigintToCancel:
    """While pv_add runs in the main thread with Python's default SIGINT
    handler, Ctrl-C sets pv_add's cancel flag instead of raising inside a
    ctypes callback (where the exception would be lost): pv_add then
    commits what it embedded and returns, and add() raises
    KeyboardInterrupt. Python runs the handler when the callbacks run."""

    def __init__(self, cancel):
        self.cancel = cancel
        self.caught = False
        self.old = None

    def _handler(self, signum, frame):
        self.caught = True
        self.cancel.value = 1

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


class Database:
    """An open pixvec database (a folder). Database(path, readonly=False)
    opens one that exists; Database.create(...) makes a new one. Use it as
    a context manager, or call close()."""

    def __init__(self, path, readonly=False, _handle=None):
        self.path = os.fspath(path)
        self.readonly = bool(readonly)
        self._lock = threading.RLock()
        self._db = None
        if _handle is not None:
            self._db = _handle
            return
        h = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERRLEN)
        rc = _lib.pv_db_open(_enc(path), PV_OPEN_RDONLY if readonly else 0, ctypes.byref(h),
                             err, _ERRLEN)
        if rc != 0:
            raise _error(rc, _err_buf_message(rc, err))
        self._db = h

    @classmethod
    def create(cls, path, embedder="pixels", size=None, rgb=False, model=None,
               vectors="f32", M=None, ef_construction=None, no_mirror=False,
               pool_sum=False):
        """Create a new database folder at path (made if missing; Exists if
        it holds a database already) and return it open for writing.

        embedder: "pixels" (default: the image resized to size x size,
          default 28, grey or rgb), "cnn" (MobileNetV2; model: a weight
          file, None for the installed one), "photo" (near-duplicate
          photographs), "clip", "dinov2", "vitmae" (model: a Hugging Face
          checkpoint folder, required), or "external" (vectors computed
          elsewhere, size = their dimension; see import_vectors).
        vectors: "f32" (default), "f16", "i8", "f16-only" or "i8-only": the
          compact copies graph searches score with.
        M, ef_construction: HNSW parameters (None: 16 and 200).
        no_mirror (photo), pool_sum (vitmae): stored with the database."""
        if vectors not in _VECTOR_KINDS:
            raise InvalidArgument("vectors takes %s, not %r" % (", ".join(_VECTOR_KINDS),
                                                                vectors), PV_EINVAL)
        k = _VECTOR_KINDS.index(vectors)
        emb = _EmbedderOpts(name=embedder.encode(), size=int(size or 0), rgb=int(bool(rgb)),
                            no_mirror=int(bool(no_mirror)), pool_sum=int(bool(pool_sum)),
                            model=_enc(model) if model is not None else None)
        idx = _IndexOpts(M=int(M or 0), ef_construction=int(ef_construction or 0),
                         vectors=k - 2 if k > 2 else k, compact_only=int(k > 2))
        h = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERRLEN)
        rc = _lib.pv_db_create(_enc(path), ctypes.byref(emb), ctypes.byref(idx),
                               ctypes.byref(h), err, _ERRLEN)
        if rc != 0:
            raise _error(rc, _err_buf_message(rc, err))
        return cls(path, _handle=h)

    # -- lifetime

    def close(self):
        """Close the handle (idempotent)."""
        with self._lock:
            if self._db is not None:
                _lib.pv_db_close(self._db)
                self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_db", None) is not None:
                _lib.pv_db_close(self._db)
                self._db = None
        except Exception:
            pass

    def __repr__(self):
        return "<pixvec.Database %r%s%s>" % (self.path, " readonly" if self.readonly else "",
                                             " closed" if self._db is None else "")

    @property
    def closed(self):
        return self._db is None

    def _handle(self):
        if self._db is None:
            raise InvalidArgument("%s: the database is closed" % self.path, PV_EINVAL)
        return self._db

    def _check(self, rc):
        if rc != 0:
            m = _lib.pv_db_errmsg(self._db) if self._db is not None else None
            raise _error(rc, m.decode("utf-8", "replace") if m else strerror(rc))

    def interrupt(self):
        """Ask the long call now running on this handle (add, dups, ...) in
        another thread to stop soon; it raises Interrupted."""
        h = self._db
        if h is not None:
            _lib.pv_db_interrupt(h)

    # -- information

    def info(self):
        """The database's numbers as a dict, with the keys and values of
        `pixvec info --json` (database, format, embedder, embedder_desc,
        dim, items, deleted, next_id, chunk, hnsw_m, hnsw_ef_construction,
        graph_nodes, disk_bytes, map_bytes, ivf_nlist, cluster_k,
        dups_threshold, vectors, coded, code_bytes, formats: {name: count})
        and graph_levels, compact_only, float32_dropped."""
        inf = _Info()
        with self._lock:
            self._check(_lib.pv_db_info(self._handle(), ctypes.byref(inf)))
        only = inf.compact_only and inf.vectors != 0
        return {
            "database": self.path,
            "format": inf.format,
            "embedder": inf.embedder.decode("utf-8", "replace"),
            "embedder_desc": inf.embedder_desc.decode("utf-8", "replace"),
            "dim": inf.dim,
            "items": inf.items,
            "deleted": inf.deleted,
            "next_id": inf.next_id,
            "chunk": inf.chunk,
            "hnsw_m": inf.hnsw_m,
            "hnsw_ef_construction": inf.hnsw_ef_construction,
            "graph_nodes": inf.graph_nodes,
            "graph_levels": inf.graph_levels,
            "disk_bytes": inf.disk_bytes,
            "map_bytes": inf.map_bytes,
            "ivf_nlist": inf.ivf_nlist,
            "cluster_k": inf.cluster_k,
            "dups_threshold": _f32_short(inf.dups_threshold),
            "vectors": _VECTOR_KINDS[inf.vectors + 2 if only else inf.vectors],
            "coded": inf.coded,
            "code_bytes": inf.code_bytes,
            "compact_only": bool(inf.compact_only),
            "float32_dropped": bool(inf.float32_dropped),
            "formats": {_lib.pv_format_name(f).decode(): int(inf.formats[f])
                        for f in range(PV_NFORMATS) if inf.formats[f]},
        }

    @property
    def dim(self):
        """The embedding dimension."""
        inf = _Info()
        with self._lock:
            self._check(_lib.pv_db_info(self._handle(), ctypes.byref(inf)))
        return inf.dim

    def __len__(self):
        """Live items."""
        inf = _Info()
        with self._lock:
            self._check(_lib.pv_db_info(self._handle(), ctypes.byref(inf)))
        return int(inf.items)

    def verify(self):
        """Check the database's invariants; raises Error (PV_ECORRUPT) naming
        the first broken one."""
        with self._lock:
            self._check(_lib.pv_db_verify(self._handle()))

    def items(self):
        """Every live item, by id: a list of Item(id, path, size, mtime_ns,
        width, height, hash, format)."""
        arr = ctypes.POINTER(_Item)()
        n = _size()
        with self._lock:
            self._check(_lib.pv_items(self._handle(), ctypes.byref(arr), ctypes.byref(n)))
        try:
            return [Item(it.id, _cstr(it.path), it.size, it.mtime_ns, it.width, it.height,
                         bytes(it.hash).hex(), _lib.pv_format_name(it.format).decode())
                    for it in (arr[i] for i in range(n.value))]
        finally:
            _lib.pv_items_free(arr, n.value)

    # -- adding and removing

    def add(self, *paths, threads=0, progress=None, commit_seconds=0.0):
        """Add image files and folders (walked recursively; unchanged files
        skipped, changed ones re-embedded). Returns AddStats: counts, and
        failures = [(path, reason), ...] for the files that could not be
        added (they do not raise). progress: None or a callable(done, total)
        called a few times a second. Ctrl-C (or an exception raised by
        progress) stops the run after committing what was embedded, then
        propagates. Raises Error only when the run cannot go on."""
        if len(paths) == 1 and isinstance(paths[0], (list, tuple)):
            paths = tuple(paths[0])
        if not paths:
            raise InvalidArgument("add: name the files or folders to add", PV_EINVAL)
        failures = []
        pending = []
        cancel = _i32(0)

        def on_error(_ctx, path, code, reason):
            try:
                failures.append((_dec(path), reason.decode("utf-8", "replace")
                                 if reason else strerror(code)))
            except BaseException as e:  # noqa: B902 - re-raised after the call
                pending.append(e)
                cancel.value = 1

        def on_progress(_ctx, done, total):
            try:
                # runs the Python signal handlers: Ctrl-C raises here
                _check_signals()
                if progress is not None:
                    progress(int(done), int(total))
            except BaseException as e:  # KeyboardInterrupt lands here
                pending.append(e)
                cancel.value = 1

        # The CFUNCTYPE objects live in these locals until pv_add returns.
        err_cb, prog_cb = _ON_ERROR_FN(on_error), _PROGRESS_FN(on_progress)
        opts = _AddOpts(threads=int(threads), progress=prog_cb, on_error=err_cb, ctx=None,
                        cancel=ctypes.pointer(cancel), commit_seconds=float(commit_seconds))
        arr = (_str * len(paths))(*[_enc(p) for p in paths])
        st = _AddStats()
        with self._lock, _SigintToCancel(cancel) as sig:
            rc = _lib.pv_add(self._handle(), arr, len(paths), ctypes.byref(opts),
                             ctypes.byref(st))
        if sig.caught:
            raise KeyboardInterrupt
        if pending:
            raise pending[0]
        self._check(rc)
        return AddStats(st, failures)

    def remove(self, path):
        """Mark the item stored under path as removed (NotFound if none)."""
        with self._lock:
            self._check(_lib.pv_remove(self._handle(), _enc(path)))

    def vacuum(self):
        """Rebuild the HNSW graph from the live items only."""
        with self._lock:
            self._check(_lib.pv_vacuum(self._handle()))

    # -- queries

    @staticmethod
    def _qopts(k, exact, ef, ivf, nprobe):
        return _QueryOpts(k=int(k), exact=int(bool(exact)), ef=int(ef or 0), ids_only=0,
                          ivf=int(bool(ivf)), nprobe=int(nprobe or 0), no_rerank=0)

    def _hits(self, call):
        hits = ctypes.POINTER(_Hit)()
        n = _size()
        with self._lock:
            self._check(call(ctypes.byref(hits), ctypes.byref(n)))
        try:
            return [Hit(h.id, float(h.score), _cstr(h.path))
                    for h in (hits[i] for i in range(n.value))]
        finally:
            _lib.pv_hits_free(hits, n.value)

    def query(self, image_path=None, vector=None, k=10, exact=False, ef=None, text=None,
              ivf=False, nprobe=None):
        """The k stored images most like an image file (image_path), a
        vector (a 1-D numpy array of the database's dimension, any float
        dtype: normalised here) or a text (text; CLIP databases), best
        first, as a list of Hit(id, score, path). exact=True scans every
        vector; else the HNSW graph with candidate list ef (default 64), or
        the IVF lists with ivf=True (nprobe lists)."""
        if sum(x is not None for x in (image_path, vector, text)) != 1:
            raise InvalidArgument("query: give one of image_path, vector or text", PV_EINVAL)
        o = self._qopts(k, exact, ef, ivf, nprobe)
        if image_path is not None:
            p = _enc(image_path)
            return self._hits(lambda h, n: _lib.pv_query_image(self._handle(), p,
                                                               ctypes.byref(o), h, n))
        if text is not None:
            t = text.encode("utf-8")
            return self._hits(lambda h, n: _lib.pv_query_text(self._handle(), t,
                                                              ctypes.byref(o), h, n))
        v = _vector(vector)
        return self._hits(lambda h, n: _lib.pv_query_vector(self._handle(), _fptr(v), len(v),
                                                            ctypes.byref(o), h, n))

    def query_many(self, vectors, k=10, exact=False, ef=None):
        """query(vector=row) for each row of a 2-D array: a list of lists of Hit."""
        a = np.asarray(vectors)
        if a.ndim != 2:
            raise InvalidArgument("query_many: a 2-D array, one vector a row, not shape %s"
                                  % (a.shape,), PV_EINVAL)
        return [self.query(vector=row, k=k, exact=exact, ef=ef) for row in a]

    def embed(self, image_path):
        """The vector the database's embedder makes of an image file,
        without storing it: a float32 array of shape (dim,), unit length
        (zero for a flat image)."""
        dim = self.dim
        out = np.zeros(dim, dtype=np.float32)
        with self._lock:
            self._check(_lib.pv_embed_file(self._handle(), _enc(image_path), _fptr(out), dim))
        return out

    # -- duplicates

    def dups(self, threshold=None, mode="auto", keep="largest", prefer=None, across=None,
             fraction=None, neighbours=None, ef=None):
        """Groups of near-duplicate images, as pixvec dups finds them: a
        Dups list of DupGroup, each a list of DupMember(id, path, score,
        keep) with the representative (kept) first. Groups never chain:
        every member scores >= threshold with its representative.

        threshold: cosine (None: the embedder's default, info()["dups_threshold"]);
        mode: "auto", "exact" or "approx"; keep: "largest", "oldest" or
        "newest" (which image represents a group); prefer: a folder whose
        files are never dropped; across=(a, b): only pairs with one image
        under folder a (say train/) and one under b (test/): b's images
        are the ones to drop (a leak check). fraction: pick the threshold
        at which this fraction of the images has a neighbour.
        The result's .drop lists the paths to leave out."""
        if mode not in _DUPS_MODES:
            raise InvalidArgument("mode takes auto, exact or approx, not %r" % (mode,), PV_EINVAL)
        if keep not in _KEEP:
            raise InvalidArgument("keep takes largest, oldest or newest, not %r" % (keep,),
                                  PV_EINVAL)
        a = b = None
        if across is not None:
            if len(across) != 2:
                raise InvalidArgument("across: a pair of folders (a, b)", PV_EINVAL)
            a, b = _enc(across[0]), _enc(across[1])
        o = _DupsOpts(threshold=float(threshold or 0), mode=_DUPS_MODES[mode],
                      keep=_KEEP[keep], prefer=_enc(prefer) if prefer is not None else None,
                      across_a=a, across_b=b, neighbours=int(neighbours or 0),
                      ef=int(ef or 0), fraction=float(fraction or 0), want_pairs=0)
        d = ctypes.POINTER(_Dups)()
        with self._lock:
            self._check(_lib.pv_find_dups(self._handle(), ctypes.byref(o), ctypes.byref(d)))
        try:
            r = d.contents
            groups = []
            for gi in range(r.ngroups):
                g = r.groups[gi]
                ms = [g.members[i] for i in range(g.n)]
                groups.append(DupGroup(
                    [DupMember(m.item.id, _cstr(m.item.path), float(m.score), bool(m.keep))
                     for m in ms], float(g.weakest), bool(g.all_exact),
                    tuple(bool(m.exact) for m in ms)))
            return Dups(groups, threshold=_f32_short(r.threshold), pairs=int(r.pairs),
                        images=int(r.images), dropped=int(r.dropped),
                        exact_images=int(r.exact_images), scanned=int(r.scanned),
                        approximate=bool(r.approximate), seconds=float(r.seconds))
        finally:
            _lib.pv_dups_free(d)

    # -- export and import

    def export(self, prefix, format="npy", force=False):
        """Write the live vectors of one snapshot to files named by prefix
        (a path without extension): "npy" writes PREFIX.npy (float32, N x D),
        PREFIX.ids.npy (uint32) and PREFIX.paths.txt; "fvecs" PREFIX.fvecs
        and the same ids and paths; "jsonl" PREFIX.jsonl. Existing files
        raise Exists unless force. Returns ExportStats(items, dim, dequantized)."""
        if format not in _EXPORT_FORMATS:
            raise InvalidArgument("format takes npy, fvecs or jsonl, not %r" % (format,),
                                  PV_EINVAL)
        o = _ExportOpts(format=_EXPORT_FORMATS[format], force=int(bool(force)))
        st = _ExportStats()
        with self._lock:
            self._check(_lib.pv_db_export(self._handle(), _enc(prefix), ctypes.byref(o),
                                          ctypes.byref(st)))
        return ExportStats(int(st.items), int(st.dim), bool(st.dequantized))

    def to_numpy(self):
        """(ids, paths, vectors) of the live items in id order, from one
        snapshot: ids a uint32 array (N,), paths a list of N str, vectors a
        float32 array (N, D) of unit-length rows. Made by the exporter
        (pv_db_export) into a temporary folder, read back with numpy."""
        with tempfile.TemporaryDirectory(prefix="pixvec-") as tmp:
            prefix = os.path.join(tmp, "x")
            st = self.export(prefix)
            vectors = np.load(prefix + ".npy", allow_pickle=False)
            ids = np.load(prefix + ".ids.npy", allow_pickle=False)
            paths = read_paths(prefix + ".paths.txt")
        if st.items == 0:
            vectors = vectors.reshape(0, st.dim)
        return ids.astype(np.uint32, copy=False), paths, vectors.astype(np.float32, copy=False)

    def import_vectors(self, vectors, paths, normalize=False):
        """Make items of vectors computed elsewhere (a 2-D array, row i for
        paths[i]) in this database, which must use the "external" embedder
        of the vectors' dimension. All or nothing. normalize=True scales
        each row to unit length; else a row whose norm is not 1 is refused.
        Returns the number imported."""
        a = np.asarray(vectors)
        if a.ndim != 2:
            raise InvalidArgument("import_vectors: a 2-D array, one vector a row, not shape %s"
                                  % (a.shape,), PV_EINVAL)
        a = np.ascontiguousarray(a, dtype=np.float32)
        paths = list(paths)
        if len(paths) != a.shape[0]:
            raise InvalidArgument("import_vectors: %d rows but %d paths: one path a row"
                                  % (a.shape[0], len(paths)), PV_EINVAL)
        arr = (_str * max(1, len(paths)))(*[_enc(p) for p in paths])
        o = _ImportOpts(normalize=int(bool(normalize)))
        n = _size()
        with self._lock:
            self._check(_lib.pv_import_vectors(self._handle(), _fptr(a), a.shape[0],
                                               a.shape[1], arr, ctypes.byref(o),
                                               ctypes.byref(n)))
        return n.value


def open(path, readonly=False):  # noqa: A001 - pixvec.open, like sqlite3.connect
    """Open the database at path: Database(path, readonly)."""
    return Database(path, readonly=readonly)


def read_paths(file):
    """The paths of a PREFIX.paths.txt file as pv_db_export writes them
    (escapes undone by the library's own reader): a list of str."""
    arr = ctypes.POINTER(_str)()
    n = _size()
    err = ctypes.create_string_buffer(_ERRLEN)
    rc = _lib.pv_paths_read(_enc(file), ctypes.byref(arr), ctypes.byref(n), err, _ERRLEN)
    if rc != 0:
        raise _error(rc, _err_buf_message(rc, err))
    try:
        return [os.fsdecode(arr[i]) for i in range(n.value)]
    finally:
        _lib.pv_paths_free(arr, n.value)


def import_vectors(path, vectors, paths, normalize=False):
    """Import vectors computed elsewhere (a 2-D array, row i for paths[i])
    into the database at path, creating it with the "external" embedder of
    the vectors' dimension when it does not exist (when the import fails,
    a database made here is removed again). Query it with
    Database.query(vector=...). Returns the number imported."""
    a = np.asarray(vectors)
    if a.ndim != 2:
        raise InvalidArgument("import_vectors: a 2-D array, one vector a row, not shape %s"
                              % (a.shape,), PV_EINVAL)
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, "data.mdb")):
        with Database(path) as db:
            return db.import_vectors(a, paths, normalize)
    made_dir = not os.path.exists(path)
    db = Database.create(path, embedder="external", size=a.shape[1])
    try:
        return db.import_vectors(a, paths, normalize)
    except BaseException:
        db.close()
        for f in ("data.mdb", "lock.mdb"):
            try:
                os.unlink(os.path.join(path, f))
            except OSError:
                pass
        if made_dir:
            try:
                os.rmdir(path)
            except OSError:
                pass
        raise
    finally:
        db.close()
