"""py_test_pixvec.py - the Python module (python/pixvec.py) end to end.

Run by tests/test_python.c (Criterion suite `python`) as
    PYTHONPATH=python PIXVEC_LIB=build/libpixvec.so PIXVEC_BIN=build/pixvec \
        python3 -B tests/py_test_pixvec.py -v
on images written here (numpy pixels, a small PNG writer: zlib + struct).
There is no C function giving the struct sizes, so the ctypes mirrors of
pixvec.h's structures are proven by behaviour: every field read back is
compared with what the CLI (`pixvec info --json`), the file system or the
test's own construction says it must be.
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np

import pixvec

W, H = 64, 48  # the generated images' size
N_TRAIN = 12   # distinct train images


def write_png(path, pixels):
    """pixels: uint8 (h, w) grey or (h, w, 3) RGB, written as a PNG."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = a.shape[:2]
    ct = 2 if a.ndim == 3 else 0
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ct, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def picture(seed, w=W, h=H):
    """An RGB image of a few blobs and a grating, different for every seed
    (their centred 28x28 vectors are far apart)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    img = np.zeros((h, w))
    for _ in range(4):
        cx, cy, s = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
        img += rng.uniform(-1, 1) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    fx, fy, ph = rng.uniform(1, 5), rng.uniform(1, 5), rng.uniform(0, 6.3)
    img += 0.5 * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    img = (img - img.min()) / (img.max() - img.min() + 1e-9)
    tint = rng.uniform(0.6, 1.0, 3)
    return (img[..., None] * tint * 255).astype(np.uint8)


def upscale(a, num=3, den=2):
    """A resized copy (nearest neighbour, num/den times larger) with a little noise."""
    h, w = a.shape[:2]
    ys = (np.arange(h * num // den) * den // num)
    xs = (np.arange(w * num // den) * den // num)
    b = a[ys][:, xs].astype(np.int16)
    b += np.random.default_rng(7).integers(-3, 4, b.shape, dtype=np.int16)
    return np.clip(b, 0, 255).astype(np.uint8)


class PixvecTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pv-py-")
        cls.train = os.path.join(cls.tmp, "data", "train")
        cls.test = os.path.join(cls.tmp, "data", "test")
        os.makedirs(cls.train)
        os.makedirs(cls.test)
        cls.pics = {}
        for i in range(N_TRAIN):
            p = os.path.join(cls.train, "img%02d.png" % i)
            cls.pics[p] = picture(i)
            write_png(p, cls.pics[p])
        # planted in train/: a byte copy of img03, and a 1.5x resized copy
        cls.orig = os.path.join(cls.train, "img03.png")
        cls.copy = os.path.join(cls.train, "img03_copy.png")
        cls.big = os.path.join(cls.train, "img03_big.png")
        shutil.copyfile(cls.orig, cls.copy)
        write_png(cls.big, upscale(cls.pics[cls.orig]))
        # test/: two new images and a resized copy of train's img07 (a leak)
        cls.leak = os.path.join(cls.test, "t_leak.png")
        write_png(cls.leak, upscale(cls.pics[os.path.join(cls.train, "img07.png")]))
        for i in range(2):
            write_png(os.path.join(cls.test, "t%02d.png" % i), picture(100 + i))
        # a broken file: a PNG signature and a cut header
        cls.broken = os.path.join(cls.train, "broken.png")
        with open(cls.broken, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00")
        cls.good = N_TRAIN + 2 + 3  # images that decode
        cls.dbpath = os.path.join(cls.tmp, "main.pvdb")
        cls.progress = []
        cls.db = pixvec.Database.create(cls.dbpath)
        cls.stats = cls.db.add(cls.train, cls.test, threads=2,
                               progress=lambda d, t: cls.progress.append((d, t)))

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def newdir(self, name):
        return os.path.join(tempfile.mkdtemp(dir=self.tmp), name)

    # -- add

    def test_add_counts_and_failure(self):
        s = self.stats
        self.assertEqual(s.added, self.good)
        self.assertEqual(s.failed, 1)
        self.assertEqual(s.seen, self.good + 1)
        self.assertEqual(s.kept, self.good)
        self.assertEqual((s.updated, s.unchanged, s.moved, s.forgotten), (0, 0, 0, 0))
        self.assertEqual(len(s.failures), 1)
        path, reason = s.failures[0]
        self.assertEqual(path, self.broken)
        self.assertTrue(reason, "the failure carries a reason")
        self.assertIn("truncated", reason)
        self.assertTrue(self.progress and self.progress[-1][1] >= self.good,
                        "progress called with the total: %r" % self.progress[-3:])

    def test_add_again_unchanged_and_moved(self):
        d = self.newdir("imgs")
        os.makedirs(d)
        for i in range(3):
            write_png(os.path.join(d, "a%d.png" % i), picture(200 + i))
        with pixvec.Database.create(self.newdir("m.pvdb")) as db:
            self.assertEqual(db.add(d).added, 3)
            s = db.add(d)
            self.assertEqual((s.added, s.unchanged, s.failed), (0, 3, 0))
            os.rename(os.path.join(d, "a1.png"), os.path.join(d, "renamed.png"))
            s = db.add(d)
            self.assertEqual((s.added, s.moved, s.unchanged), (0, 1, 2))
            self.assertEqual(s["moved"], 1)
            self.assertEqual(len(db), 3)
            db.remove(os.path.join(d, "renamed.png"))
            self.assertEqual(len(db), 2)
            with self.assertRaises(pixvec.NotFound):
                db.remove(os.path.join(d, "renamed.png"))
            db.verify()

    def test_progress_exception_propagates(self):
        d = self.newdir("imgs")
        os.makedirs(d)
        write_png(os.path.join(d, "a.png"), picture(300))

        def boom(done, total):
            raise KeyError("stop here")

        with pixvec.Database.create(self.newdir("p.pvdb")) as db:
            with self.assertRaises(KeyError):
                db.add(d, progress=boom)
            db.verify()
            self.assertLessEqual(len(db), 1)

    def test_ctrl_c_during_add(self):
        d = self.newdir("imgs")
        os.makedirs(d)
        for i in range(6):
            write_png(os.path.join(d, "a%d.png" % i), picture(400 + i))
        before = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pixvec.Database.create(self.newdir("i.pvdb")) as db:
                with self.assertRaises(KeyboardInterrupt):
                    db.add(d, threads=1,
                           progress=lambda done, total: os.kill(os.getpid(), signal.SIGINT))
                # the handler is Python's again, and the database sound
                self.assertIs(signal.getsignal(signal.SIGINT), signal.default_int_handler)
                db.verify()
                self.assertLessEqual(len(db), 6)
                self.assertEqual(db.add(d).failed, 0)
                self.assertEqual(len(db), 6)
        finally:
            signal.signal(signal.SIGINT, before)

    # -- items, info, the struct layouts

    def test_items_fields(self):
        items = self.db.items()
        self.assertEqual(len(items), self.good)
        self.assertEqual([it.id for it in items], sorted(it.id for it in items))
        by_path = {it.path: it for it in items}
        self.assertNotIn(self.broken, by_path)
        for p in (self.orig, self.big, self.leak):
            it = by_path[p]
            st = os.stat(p)
            self.assertEqual(it.size, st.st_size)
            self.assertEqual(it.mtime_ns, st.st_mtime_ns)
            self.assertEqual(it.format, "PNG")
            self.assertEqual(len(it.hash), 32)
        self.assertEqual((by_path[self.orig].width, by_path[self.orig].height), (W, H))
        self.assertEqual((by_path[self.big].width, by_path[self.big].height),
                         (W * 3 // 2, H * 3 // 2))
        self.assertEqual(by_path[self.orig].hash, by_path[self.copy].hash)
        self.assertNotEqual(by_path[self.orig].hash, by_path[self.big].hash)

    def test_info_matches_cli(self):
        exe = os.environ.get("PIXVEC_BIN") or shutil.which("pixvec")
        self.assertTrue(exe, "set PIXVEC_BIN to the pixvec binary")
        out = subprocess.run([exe, "info", self.dbpath, "--json"], check=True,
                             capture_output=True, text=True).stdout
        cli = json.loads(out)
        mine = self.db.info()
        compared = 0
        for k, v in cli.items():
            if k in ("ok", "command", "database"):
                continue
            self.assertIn(k, mine)
            self.assertEqual(mine[k], v, k)
            compared += 1
        self.assertGreaterEqual(compared, 20)
        self.assertEqual(mine["items"], self.good)
        self.assertEqual(mine["formats"], {"PNG": self.good})
        self.assertEqual(mine["dim"], 784)
        self.assertGreaterEqual(mine["graph_levels"], 1)
        self.assertEqual(mine["embedder"], "pixels")

    def test_create_options(self):
        p = self.newdir("o.pvdb")
        with pixvec.Database.create(p, size=16, rgb=True, vectors="f16", M=8,
                                    ef_construction=50) as db:
            inf = db.info()
        self.assertEqual(inf["dim"], 3 * 16 * 16)
        self.assertEqual((inf["hnsw_m"], inf["hnsw_ef_construction"]), (8, 50))
        self.assertEqual(inf["vectors"], "f16")
        self.assertIn("16x16", inf["embedder_desc"])
        with pixvec.Database.create(self.newdir("o2.pvdb"), vectors="i8-only") as db:
            inf = db.info()
        self.assertEqual(inf["vectors"], "i8-only")
        self.assertTrue(inf["compact_only"])
        with pixvec.open(p, readonly=True) as db:
            self.assertEqual(db.info()["dim"], 768)
            with self.assertRaises(pixvec.Error) as cm:
                db.add(self.train)
            self.assertEqual(cm.exception.code, pixvec.PV_ERDONLY)

    # -- queries

    def test_query_by_path(self):
        p = os.path.join(self.train, "img05.png")
        hits = self.db.query(p, k=5)
        self.assertEqual(len(hits), 5)
        self.assertEqual(hits[0].path, p)
        self.assertGreater(hits[0].score, 0.999)
        self.assertLess(hits[1].score, 0.9)
        self.assertEqual([h.score for h in hits], sorted((h.score for h in hits), reverse=True))
        ids = {it.path: it.id for it in self.db.items()}
        self.assertEqual(hits[0].id, ids[p])
        self.assertEqual(len(self.db.query(p, k=3)), 3)

    def test_query_by_vector_same_answer(self):
        p = os.path.join(self.train, "img08.png")
        by_path = self.db.query(p, k=6, exact=True)
        v = self.db.embed(p)
        self.assertEqual(v.dtype, np.float32)
        self.assertEqual(v.shape, (784,))
        self.assertAlmostEqual(float(np.linalg.norm(v)), 1.0, places=4)
        by_vec = self.db.query(vector=v, k=6, exact=True)
        self.assertEqual([h.id for h in by_vec], [h.id for h in by_path])
        for a, b in zip(by_vec, by_path):
            self.assertAlmostEqual(a.score, b.score, places=5)
        # float64, scaled, not contiguous: converted, normalised by pixvec
        v64 = np.stack([v.astype(np.float64) * 3, np.zeros(784)], axis=1)[:, 0]
        self.assertFalse(v64.flags["C_CONTIGUOUS"])
        self.assertEqual([h.id for h in self.db.query(vector=v64, k=6, exact=True)],
                         [h.id for h in by_path])
        # the graph finds the same first hit
        self.assertEqual(self.db.query(vector=v, k=6, ef=32)[0].id, by_path[0].id)
        many = self.db.query_many(np.stack([v, self.db.embed(self.leak)]), k=2, exact=True)
        self.assertEqual(len(many), 2)
        self.assertEqual(many[0][0].id, by_path[0].id)
        self.assertEqual(many[1][0].path, self.leak)

    # -- duplicates

    def test_dups(self):
        d = self.db.dups()
        self.assertAlmostEqual(d.threshold, self.db.info()["dups_threshold"], places=6)
        groups = {frozenset(m.path for m in g): g for g in d}
        planted = frozenset({self.orig, self.copy, self.big})
        leak = frozenset({os.path.join(self.train, "img07.png"), self.leak})
        self.assertEqual(set(groups), {planted, leak}, [list(g) for g in d])
        g = groups[planted]
        # keep="largest": the resized copy has the most pixels
        self.assertEqual(g[0].path, self.big)
        self.assertTrue(g[0].keep)
        self.assertAlmostEqual(g[0].score, 1.0, places=5)
        self.assertEqual([m.keep for m in g[1:]], [False, False])
        for m in g[1:]:
            self.assertGreaterEqual(m.score, d.threshold)
            self.assertLess(m.score, 1.0)
        self.assertAlmostEqual(g.weakest, min(m.score for m in g), places=6)
        self.assertFalse(g.all_exact)
        self.assertEqual(d.dropped, 3)
        self.assertEqual(d.images, 5)
        self.assertEqual(d.scanned, self.good)
        self.assertEqual(sorted(d.drop), sorted([self.orig, self.copy, m_other(groups[leak])]))
        ids = {it.path: it.id for it in self.db.items()}
        self.assertEqual(sorted(d.drop_ids), sorted(ids[p] for p in d.drop))
        # a strict threshold leaves only the byte copies; keep="oldest" or
        # "newest" picks another representative among them
        strict = self.db.dups(threshold=0.99999, mode="exact")
        self.assertEqual(len(strict), 1)
        self.assertEqual({m.path for m in strict[0]}, {self.orig, self.copy})
        self.assertTrue(strict[0].all_exact)
        self.assertEqual(strict[0].exact, (True, True))

    def test_dups_across(self):
        d = self.db.dups(across=(self.train, self.test))
        self.assertEqual(len(d), 1, [list(g) for g in d])
        g = d[0]
        self.assertEqual([m.path for m in g], [os.path.join(self.train, "img07.png"), self.leak])
        self.assertEqual([m.keep for m in g], [True, False])
        self.assertEqual(d.drop, [self.leak])
        self.assertEqual(d.scanned, 3)  # test/'s images, each against train/'s

    # -- export, numpy, import

    def test_to_numpy(self):
        ids, paths, vecs = self.db.to_numpy()
        items = self.db.items()
        self.assertEqual(ids.dtype, np.uint32)
        self.assertEqual(vecs.dtype, np.float32)
        self.assertEqual(vecs.shape, (self.good, 784))
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
        self.assertEqual(ids.tolist(), [it.id for it in items])
        self.assertEqual(paths, [it.path for it in items])
        i = paths.index(self.leak)
        np.testing.assert_allclose(vecs[i], self.db.embed(self.leak), atol=1e-6)

    def test_export_files(self):
        prefix = self.newdir("e")
        st = self.db.export(prefix)
        self.assertEqual((st.items, st.dim, st.dequantized), (self.good, 784, False))
        for ext in (".npy", ".ids.npy", ".paths.txt"):
            self.assertTrue(os.path.exists(prefix + ext), ext)
        with self.assertRaises(pixvec.Exists) as cm:
            self.db.export(prefix)
        self.assertIn(prefix, str(cm.exception))
        self.assertEqual(self.db.export(prefix, force=True).items, self.good)
        st = self.db.export(prefix, format="jsonl")
        with open(prefix + ".jsonl") as f:
            rows = [json.loads(line) for line in f]
        self.assertEqual(len(rows), self.good)
        self.assertEqual(len(rows[0]["vector"]), 784)

    def test_import_round_trip(self):
        ids, paths, vecs = self.db.to_numpy()
        ext = self.newdir("ext.pvdb")
        self.assertEqual(pixvec.import_vectors(ext, vecs, paths), self.good)
        with pixvec.open(ext, readonly=True) as db2:
            inf = db2.info()
            self.assertEqual((inf["embedder"], inf["dim"], inf["items"]),
                             ("external", 784, self.good))
            _, paths2, vecs2 = db2.to_numpy()
            self.assertEqual(paths2, paths)
            np.testing.assert_allclose(vecs2, vecs, atol=1e-6)
            # the same top hits as the original database, by path (the
            # external database numbers its items itself) and by id mapped
            to_orig = dict(zip(paths, ids.tolist()))
            for row in (0, 4, paths.index(self.leak)):
                a = self.db.query(vector=vecs[row], k=5, exact=True)
                b = db2.query(vector=vecs[row], k=5, exact=True)
                self.assertEqual([h.id for h in a], [to_orig[h.path] for h in b])
                for x, y in zip(a, b):
                    self.assertAlmostEqual(x.score, y.score, places=5)
            with self.assertRaises(pixvec.EmbedderMismatch):
                db2.query(self.leak)
        # importing again: the paths are stored already, nothing changes
        with self.assertRaises(pixvec.Exists):
            pixvec.import_vectors(ext, vecs[:2], paths[:2])
        # rows that are not unit length: refused naming the row, and the
        # database this call created is removed again; normalize=True takes them
        bad = self.newdir("bad.pvdb")
        raw = vecs[:3] * np.array([[1.0], [2.0], [1.0]], dtype=np.float32)
        with self.assertRaises(pixvec.Error) as cm:
            pixvec.import_vectors(bad, raw, ["/x/a.png", "/x/b.png", "/x/c.png"])
        self.assertEqual(cm.exception.code, pixvec.PV_ENUMERIC)
        self.assertIn("1", str(cm.exception))
        self.assertFalse(os.path.exists(bad))
        n = pixvec.import_vectors(bad, raw.astype(np.float64), ["/x/a.png", "/x/b.png",
                                                                "/x/c.png"], normalize=True)
        self.assertEqual(n, 3)
        with pixvec.open(bad) as db3:
            hits = db3.query(vector=raw[1], k=1)
            self.assertEqual(hits[0].path, "/x/b.png")
            self.assertGreater(hits[0].score, 0.999)

    # -- errors

    def test_errors(self):
        missing = os.path.join(self.tmp, "no-such-image.png")
        with self.assertRaises(pixvec.Error) as cm:
            self.db.query(missing)
        self.assertIn(missing, str(cm.exception))
        self.assertLess(cm.exception.code, 0)
        with self.assertRaises(pixvec.Error) as cm:
            self.db.query(self.broken)
        self.assertIn("broken.png", str(cm.exception))
        self.assertEqual(cm.exception.code, pixvec.PV_EDECODE)
        self.assertIsInstance(cm.exception, pixvec.DecodeError)
        with self.assertRaises(pixvec.Error) as cm:
            self.db.embed(missing)
        self.assertIn(missing, str(cm.exception))
        with self.assertRaises(pixvec.NotADatabase) as cm:
            pixvec.open(self.train)
        self.assertIn(self.train, str(cm.exception))
        self.assertEqual(cm.exception.code, pixvec.PV_ENOTDB)
        with self.assertRaises(pixvec.Exists) as cm:
            pixvec.Database.create(self.dbpath)
        self.assertIn(self.dbpath, str(cm.exception))
        with self.assertRaises(pixvec.Error) as cm:
            self.db.query(vector=np.ones(5))
        self.assertIn("5 dims", str(cm.exception))
        with self.assertRaises(pixvec.InvalidArgument):
            self.db.query()
        with self.assertRaises(pixvec.InvalidArgument):
            self.db.dups(mode="fast")
        with self.assertRaises(pixvec.Error) as cm:
            pixvec.Database.create(self.newdir("x.pvdb"), embedder="nonsense")
        self.assertEqual(cm.exception.code, pixvec.PV_EINVAL)
        self.assertIn("nonsense", str(cm.exception))
        self.assertTrue(issubclass(pixvec.NotFound, pixvec.Error))
        self.assertEqual(pixvec.strerror(pixvec.PV_ENOTDB), "not a pixvec database")

    def test_close(self):
        p = self.newdir("c.pvdb")
        with pixvec.Database.create(p) as db:
            self.assertFalse(db.closed)
        self.assertTrue(db.closed)
        db.close()
        with self.assertRaises(pixvec.Error):
            db.info()
        # closed, so it opens again read-write
        with pixvec.Database(p) as db:
            self.assertEqual(len(db), 0)


def m_other(group):
    """The member of a two-image group that is not the representative."""
    return group[1].path


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
