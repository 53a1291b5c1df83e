"""Start-up: --help and --version, bad settings refused with a message that
names them (exit 1), and the `simd` setting: forcing the scalar kernel
works and INFO reports it; forcing a kernel this CPU or binary lacks is
refused at start-up.  engram-specific."""

import os
import platform
import subprocess
import unittest

from engram_test import Server, engram_bin, engram_only, main


def run(*args, timeout=10):
    return subprocess.run([engram_bin(), *args], capture_output=True, timeout=timeout,
                          env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))


@engram_only
class TestStartup(unittest.TestCase):
    def test_help_lists_every_setting(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        out = r.stdout.decode()
        self.assertIn("Usage: engram [config-file] [--name value ...]", out)
        for name in ("--port", "--bind", "--maxclients", "--requirepass", "--simd",
                     "--search-threads", "--client-output-buffer-limit"):
            self.assertIn(name, out)

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.decode(), r"^engram v=\d+\.\d+\.\d+\n$")

    def test_unknown_option_names_it(self):
        r = run("--no-such-setting", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--no-such-setting", r.stderr.decode())

    def test_bad_value_names_setting_and_value(self):
        r = run("--port", "99999")
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertIn("port", err)
        self.assertIn("99999", err)

    def test_search_nice_out_of_range(self):
        for bad in ("20", "-1", "x"):
            r = run("--search-nice", bad)
            self.assertEqual(r.returncode, 1, bad)
            err = r.stderr.decode()
            self.assertIn("search-nice", err)
            self.assertIn(bad, err)

    def test_unknown_simd_name(self):
        r = run("--simd", "sse9")
        self.assertEqual(r.returncode, 1)
        self.assertIn("simd", r.stderr.decode())

    def test_simd_the_cpu_lacks_is_refused(self):
        # x86-64 binaries carry no NEON kernel; aarch64 ones no AVX.
        lacking = "neon" if platform.machine() in ("x86_64", "AMD64") else "avx2"
        r = run("--port", "0", "--simd", lacking)
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode() + r.stdout.decode()
        self.assertIn("simd '%s'" % lacking, err)
        self.assertIn("not supported", err)

    def test_simd_scalar_forced(self):
        srv = Server(flags=("--simd", "scalar")).start()
        try:
            c = srv.conn()
            info = c.cmd("INFO", "vectors")
            self.assertIn(b"simd_kernel:scalar", info)
            # and searches use it
            self.assertEqual(c.cmd("VNEW", "s", "2", "METRIC", "l2"), "OK")
            self.assertEqual(c.cmd("VINFO", "s", "FULL")[c.cmd("VINFO", "s", "FULL").index(b"kernel") + 1],
                             b"scalar")
        finally:
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    main()
