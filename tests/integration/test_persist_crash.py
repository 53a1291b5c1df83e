"""Kill -9 at random moments: every acknowledged write survives.

Writer threads pipeline batches of ~50 writes (unique SETs, VADDs of new
keys, INCRs, APPENDs, overwrites and DELs of a few keys, MULTI/EXEC blocks)
and record exactly which replies they received.  The server is killed with
SIGKILL at a random moment, restarted on the same directory, and the data
must be the result of a prefix of each writer's stream at least as long as
what it saw acknowledged:

  * every acknowledged write is there with its value;
  * an unacknowledged one is either absent or exactly what was sent;
  * no holes: if a write is there, every earlier write of that writer is;
  * a MULTI/EXEC is all or nothing;
  * no key that was never sent exists; VCARD is exactly the VADDs applied;
  * nothing changes at the next restarts;
  * no start-up refuses the log (a torn tail is fine, corruption is not).

Also with appendfsync no (a process crash loses nothing that was written:
the write(2) happens before the reply in every mode) and with tiny
auto-snapshot thresholds (snapshots and log rotation during the crashes).

engram-only (the Redis target runs without persistence)."""

import os
import random
import socket
import struct
import sys
import threading
import time

from engram_test import SANITIZE, SLOW, Closed, Conn, encode, engram_only, main, \
    wait_until
import test_persist as tp

SEED = int(os.environ.get("ENGRAM_CRASH_SEED", "20240601"))
DIM = 16
INDEX = b"crash_ix"
BATCH = 50 if not SANITIZE else 25


def f32_blob(rng):
    return struct.pack("<%df" % DIM, *(rng.uniform(-1, 1) for _ in range(DIM)))


class Unit:
    """One acknowledged-or-not step of a writer: one command, or a whole
    MULTI ... EXEC.  effects: [(space, key, op)] with space "kv" or "vec"
    and op ("set", v) | ("del",) | ("incr",) | ("append", b) | ("vadd", blob)."""

    __slots__ = ("cmds", "expect", "effects", "unique")

    def __init__(self, cmds, expect, effects, unique):
        self.cmds = cmds          # the commands, in order
        self.expect = expect      # checker of the replies (list) -> error text or None
        self.effects = effects
        self.unique = unique      # its keys are written by this unit only


def apply_op(state, op):
    kind = op[0]
    if kind in ("set", "vadd"):
        return op[1]
    if kind == "del":
        return None
    if kind == "incr":
        return b"%d" % (int(state or b"0") + 1)
    if kind == "append":
        return (state or b"") + op[1]
    raise AssertionError(op)


class Writer(threading.Thread):
    def __init__(self, port, tag, seed):
        super().__init__(daemon=True)
        self.port = port
        self.tag = tag            # b"w<id>r<round>"
        self.rng = random.Random(seed)
        self.units = []           # everything sent (recorded before sending)
        self.acked = 0            # units whose every reply arrived
        self.error = None
        self.stop = False
        self.n = 0
        self.feasible = None      # prefix lengths consistent with every restart so far
        self.vcount = None        # VADDs of this writer that are in the index

    # -- the stream
    def key(self, kind):
        self.n += 1
        return b"%s:%s:%d" % (self.tag, kind, self.n)

    def value(self):
        self.n += 1
        return b"%s#%d#" % (self.tag, self.n) + bytes(
            self.rng.getrandbits(8) for _ in range(self.rng.randint(0, 60)))

    def make_batch(self):
        rng = self.rng
        units = []
        for _ in range(BATCH // 2):
            k, v = self.key(b"s"), self.value()
            units.append(Unit([("SET", k, v)], lambda r: None if r == ["OK"] else r,
                              [("kv", k, ("set", v))], True))
        for _ in range(BATCH // 5):
            k, b = self.key(b"v"), f32_blob(rng)
            units.append(Unit([("VADD", INDEX, k, b)], lambda r: None if r == [1] else r,
                              [("vec", k, ("vadd", b))], True))
        ctr = self.tag + b":ctr"
        for _ in range(BATCH // 10):
            units.append(Unit([("INCR", ctr)], lambda r: None if isinstance(r[0], int) else r,
                              [("kv", ctr, ("incr",))], False))
        ap = self.tag + b":ap"
        for _ in range(3):
            chunk = b"<%d>" % rng.randrange(1000)
            units.append(Unit([("APPEND", ap, chunk)],
                              lambda r: None if isinstance(r[0], int) else r,
                              [("kv", ap, ("append", chunk))], False))
        for _ in range(3):
            k = b"%s:o%d" % (self.tag, rng.randrange(4))
            if rng.random() < 0.3:
                units.append(Unit([("DEL", k)], lambda r: None if r[0] in (0, 1) else r,
                                  [("kv", k, ("del",))], False))
            else:
                v = self.value()
                units.append(Unit([("SET", k, v)], lambda r: None if r == ["OK"] else r,
                                  [("kv", k, ("set", v))], False))
        ka, kb, kv = self.key(b"ma"), self.key(b"mb"), self.key(b"mv")
        va, vb, bv = self.value(), self.value(), f32_blob(rng)
        units.append(Unit([("MULTI",), ("SET", ka, va), ("SET", kb, vb), ("VADD", INDEX, kv, bv),
                           ("EXEC",)],
                          lambda r: None if r == ["OK", "QUEUED", "QUEUED", "QUEUED",
                                                  ["OK", "OK", 1]] else r,
                          [("kv", ka, ("set", va)), ("kv", kb, ("set", vb)),
                           ("vec", kv, ("vadd", bv))], True))
        rng.shuffle(units)
        return units

    def run(self):
        try:
            c = Conn(self.port, timeout=20)
        except OSError as e:
            self.error = "connect: %s" % e
            return
        try:
            while not self.stop:
                batch = self.make_batch()
                self.units.extend(batch)
                c.send(b"".join(encode(*cmd) for u in batch for cmd in u.cmds))
                for u in batch:
                    replies = [c.read() for _ in u.cmds]
                    bad = u.expect(replies)
                    if bad is not None:
                        self.error = "unexpected replies %r to %r" % (bad, u.cmds[0][:2])
                        return
                    self.acked += 1
        except (Closed, OSError, socket.timeout):
            pass      # the server was killed
        finally:
            c.close()


@engram_only
class TestKill9(tp.PersistCase):
    def check_writer(self, w, c):
        """The data is the result of applying a prefix P of w's units, with
        acked <= P <= len(units); P must be the same at every restart."""
        units = w.units
        kv_keys, vec_keys = set(), set()
        for u in units:
            for space, k, _ in u.effects:
                (kv_keys if space == "kv" else vec_keys).add(k)
        kv_keys, vec_keys = sorted(kv_keys), sorted(vec_keys)
        got = dict(zip(kv_keys, tp.pipeline(c, [("GET", k) for k in kv_keys])))
        got_vec = dict(zip(vec_keys, tp.pipeline(c, [("VGET", INDEX, k) for k in vec_keys])))

        def observed(space, k):
            return got[k] if space == "kv" else got_vec[k]

        lo, hi = w.acked, len(units)
        first_missing = None
        vcount = 0
        for i, u in enumerate(units):
            if not u.unique:
                continue
            states = [observed(s, k) for s, k, _ in u.effects]
            want = [op[1] for _, _, op in u.effects]
            if states == want:
                lo = max(lo, i + 1)
                vcount += sum(1 for s, _, _ in u.effects if s == "vec")
                if first_missing is not None:
                    self.fail("%r: unit %d (%r) is there but unit %d (%r) before it is not "
                              "(a hole in the log)" % (w.tag, i, u.cmds[0][:2], first_missing,
                                                       units[first_missing].cmds[0][:2]))
            else:
                for (s, k, _), st, wv in zip(u.effects, states, want):
                    self.assertIsNone(st, "%r: unit %d %s: %r has %r; sent %r (acked: %s)"
                                      % (w.tag, i, u.cmds[0][0], k, st and st[:80], wv[:80],
                                         i < w.acked))
                self.assertGreaterEqual(i, w.acked,
                                        "%r: acknowledged unit %d (%r) lost"
                                        % (w.tag, i, u.cmds[-1][:2]))
                if first_missing is None:
                    first_missing = i
                hi = min(hi, i)
        self.assertLessEqual(lo, hi)
        # keys written by several units: some prefix in [lo, hi] explains them all
        feasible = set(range(lo, hi + 1))
        per_key = {}
        for i, u in enumerate(units):
            if not u.unique:
                for s, k, op in u.effects:
                    per_key.setdefault((s, k), []).append((i, op))
        for (s, k), ops in per_key.items():
            obs = observed(s, k)
            ok = set()
            state, j = None, 0
            for P in range(0, hi + 1):
                while j < len(ops) and ops[j][0] < P:
                    state = apply_op(state, ops[j][1])
                    j += 1
                if P >= lo and state == obs:
                    ok.add(P)
            self.assertTrue(ok & feasible,
                            "%r: %r = %r matches no prefix of the writes in [%d, %d] (acked %d)"
                            % (w.tag, k, obs, lo, hi, w.acked))
            feasible &= ok
        self.assertTrue(feasible, "%r: no single prefix explains every key" % w.tag)
        if w.feasible is not None:
            self.assertTrue(w.feasible & feasible,
                            "%r: the data changed between restarts" % w.tag)
            feasible &= w.feasible
            self.assertEqual(vcount, w.vcount, "%r: VADDs changed between restarts" % w.tag)
        w.feasible = feasible
        w.vcount = vcount

    def check_keyspace(self, c, writers):
        sent = set()
        for w in writers:
            for u in w.units:
                for s, k, _ in u.effects:
                    if s == "kv":
                        sent.add(k)
        keys = set(c.cmd("KEYS", "*")) - set(c.cmd("VLIST"))     # the strings
        never = [k for k in keys if k not in sent]
        self.assertFalse(never, "keys that were never sent: %r" % never[:5])
        self.assertEqual(c.cmd("VCARD", INDEX), sum(w.vcount for w in writers))
        # the graph answers after the replay
        r = c.cmd("VSEARCH", INDEX, b"\0\0\x80\x3f" * DIM, "5")
        self.assertIsInstance(r, list)
        self.assertEqual(len(r), 2 * min(5, c.cmd("VCARD", INDEX)))

    def kill_loop(self, rounds, flags=(), nwriters=2, min_wait=0.05, max_wait=0.3,
                  expect_snapshot=False):
        rng = random.Random(SEED)
        srv = self.start(*flags)
        c = self.conn(srv)
        self.assertEqual(c.cmd("VNEW", INDEX, str(DIM), "METRIC", "l2", "M", "8",
                               "EF_CONSTRUCTION", "32"), "OK")
        writers = []
        torn = snaps = 0
        waits0 = tp.PersistCase.lock_waits
        t0 = time.monotonic()
        for r in range(rounds):
            ws = [Writer(srv.port, b"w%dr%d" % (i, r), rng.randrange(1 << 30))
                  for i in range(nwriters)]
            for w in ws:
                w.start()
            self.assertTrue(wait_until(lambda: all(w.acked or w.error for w in ws), 10),
                            "the writers got no reply within %.0f s" % (10 * SLOW))
            time.sleep(rng.uniform(min_wait, max_wait))
            self.crash(srv)
            for w in ws:
                w.join(20 * SLOW)
                self.assertFalse(w.is_alive(), "writer %r still running" % w.tag)
                self.assertIsNone(w.error, "writer %r: %s" % (w.tag, w.error))
            writers += ws
            srv = self.start(*flags)
            log = srv.stderr()
            self.assertNotIn("corrupt", log)
            torn += "torn record" in log
            snaps += "Snapshot loaded" in log
            c = self.conn(srv)
            for w in ws:
                self.check_writer(w, c)
            self.check_keyspace(c, writers)
        # nothing changed for the earlier rounds either
        for w in writers:
            self.check_writer(w, c)
        self.check_keyspace(c, writers)
        self.stop(srv)
        # and a clean stop keeps it all as well
        srv = self.start(*flags)
        c = self.conn(srv)
        for w in writers:
            self.check_writer(w, c)
        self.stop(srv)
        sent = sum(len(w.units) for w in writers)
        acked = sum(w.acked for w in writers)
        print("\n  %d rounds, %d units sent, %d acknowledged, %d torn tails, %d restarts from a "
              "snapshot, %d waits for an orphaned snapshot child, %.1f s (seed %d)"
              % (rounds, sent, acked, torn, snaps, tp.PersistCase.lock_waits - waits0,
                 time.monotonic() - t0, SEED),
              file=sys.stderr)
        if expect_snapshot:
            self.assertTrue(os.path.exists(self.snapshot_path()), "no snapshot was ever written")
            self.assertGreater(snaps, 0, "no restart loaded a snapshot")

    def test_kill9_appendfsync_always(self):
        self.kill_loop(12 if not SANITIZE else 10)

    def test_kill9_appendfsync_no(self):
        # a process crash: everything written before the reply is in the
        # page cache, so nothing acknowledged may be lost in any mode
        self.kill_loop(5, ("--appendfsync", "no"))

    def test_kill9_everysec_with_auto_snapshots(self):
        # snapshots (and log rotation) all the time: the crash may hit a
        # running snapshot child, a rotation, a half-deleted set of logs
        self.kill_loop(6, ("--appendfsync", "everysec", "--auto-aof-rewrite-min-size", "32kb",
                           "--auto-aof-rewrite-percentage", "50"), expect_snapshot=True)


if __name__ == "__main__":
    main()
