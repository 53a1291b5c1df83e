"""engram's vector sets from node-redis v6 (tests/clients/node/vectorsets.mjs):
its own vAdd, vSim, vEmbRaw ... methods, with the client's default
protocol (RESP3 since node-redis 6) and with RESP 2; and its pub/sub
(tests/clients/node/pubsub.mjs): subscribe, pSubscribe, sSubscribe,
publish, the PUBSUB methods and keyspace notifications, in both protocols;
and its search methods (tests/clients/node/search.mjs): ft.create with HNSW
and FLAT vector, TAG, NUMERIC and TEXT fields and a PREFIX, ft.search with
KNN, PARAMS, SORTBY, RETURN, LIMIT and prefilters checked against a brute
force, ft.info, ft._list, ft.tagVals, ft.dropIndex, in RESP3 and RESP2.  node-redis 6 needs
Node.js 20 or later.

The client comes from the npm registry, pinned by the committed
package-lock.json: `npm ci` installs it once into <build dir>/node-vectorsets
(the directory holding $ENGRAM_BIN, or $ENGRAM_NODE_DIR), and again only
when the lock file changes.  Where the system's node is older than 20
(Debian 12 ships 18), a pinned Node.js 20 comes from the npm registry too
(the `node` package, into <that dir>/node20).  Without npm the test is
skipped with a message saying so (tests/run.sh installs npm).

engram-only: the harness's Redis target is 7.0, which has no vector sets
and no search module.
"""

import os
import shutil
import subprocess
import unittest

from engram_test import REPO, SLOW, ServerTestCase, engram_bin, engram_only, main

CLIENT_DIR = os.path.join(REPO, "tests", "clients", "node")
NODE20 = "node@20.18.0"


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class NodeClientCase(ServerTestCase):
    """Runs node scripts whose packages a pinned package-lock.json names.
    PACKAGE_DIR holds package.json and package-lock.json, FILES the scripts
    (paths relative to CLIENT_DIR) copied beside them; INSTALL_DIR is the
    directory (under the build dir) npm ci installs into."""

    PACKAGE_DIR = CLIENT_DIR
    FILES = ()
    INSTALL_DIR = "node-vectorsets"
    MARKER = "redis"          # node_modules/<MARKER>/package.json: installed

    @classmethod
    def setUpClass(cls):
        cls.node = shutil.which("node") or shutil.which("nodejs")
        cls.npm = shutil.which("npm")
        if not cls.node or not cls.npm:
            raise unittest.SkipTest("node client test skipped: %s not found (tests/run.sh installs "
                                    "npm, which brings node)" % ("node" if not cls.node else "npm"))
        v = subprocess.run([cls.node, "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
        if int(v.lstrip("v").split(".")[0] or 0) < 20:
            cls.node = cls.node20()
        super().setUpClass()

    @classmethod
    def base_dir(cls):
        return os.environ.get("ENGRAM_NODE_DIR") or os.path.join(
            os.path.dirname(os.path.abspath(engram_bin())), "node-vectorsets")

    @classmethod
    def node_dir(cls):
        base = cls.base_dir()
        return base if cls.INSTALL_DIR == "node-vectorsets" else os.path.join(base, cls.INSTALL_DIR)

    @classmethod
    def node20(cls):
        """A pinned Node.js 20 from the npm registry, installed once."""
        d = os.path.join(cls.base_dir(), "node20")
        exe = os.path.join(d, "node_modules", ".bin", "node")
        if not os.path.exists(exe):
            os.makedirs(d, exist_ok=True)
            p = subprocess.run([cls.npm, "install", "--prefix", d, "--no-audit", "--no-fund",
                                "--loglevel=error", NODE20], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=900)
            if p.returncode != 0 or not os.path.exists(exe):
                raise RuntimeError("npm install %s failed:\n%s"
                                   % (NODE20, p.stdout.decode("utf-8", "replace")))
        return exe

    def install(self):
        """The pinned clients in node_dir(); npm ci only when the lock changed."""
        d = self.node_dir()
        os.makedirs(d, exist_ok=True)
        lock = read(os.path.join(self.PACKAGE_DIR, "package-lock.json"))
        installed = os.path.join(d, "node_modules", self.MARKER, "package.json")
        stamp = os.path.join(d, ".installed-lock.json")
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(self.PACKAGE_DIR, name), os.path.join(d, name))
        for name in self.FILES:
            shutil.copyfile(os.path.join(CLIENT_DIR, name),
                            os.path.join(d, os.path.basename(name)))
        if os.path.exists(installed) and read(stamp) == lock:
            return d
        p = subprocess.run([self.npm, "ci", "--prefix", d, "--no-audit", "--no-fund",
                            "--loglevel=error"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600)
        self.assertEqual(p.returncode, 0, "npm ci failed:\n%s" % p.stdout.decode("utf-8", "replace"))
        with open(stamp, "wb") as f:
            f.write(lock)
        return d

    def run_script(self, script, *args):
        """Run one of the node scripts against the server; it must pass."""
        d = self.install()
        p = subprocess.run([self.node, os.path.join(d, script), str(self.port)] + list(args),
                           cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120 * SLOW)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, "node %s failed:\n%s" % (script, out))
        self.assertIn("all assertions passed", out)
        return out


@engram_only
class TestNodeRedis(NodeClientCase):
    FILES = ("vectorsets.mjs", "pubsub.mjs", "search.mjs")

    def test_node_redis_v6_vector_sets(self):
        self.run_script("vectorsets.mjs")

    def test_node_redis_v6_pubsub(self):
        self.run_script("pubsub.mjs")

    def test_node_redis_v6_search(self):
        self.run_script("search.mjs")


if __name__ == "__main__":
    main()
