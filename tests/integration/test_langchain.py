"""engram's search indices from LangChain.js, unchanged: @langchain/redis's
RedisVectorStore (tests/clients/node/langchain.mjs) with @langchain/core's
SyntheticEmbeddings -- fromTexts, similaritySearchWithScore with and
without a filter (checked against a brute force), addDocuments onto an
existing index, delete({ids}), delete({deleteAll: true}); and
FluentRedisVectorStore with a TAG/NUMERIC/TEXT metadata schema and its
filter expressions (Tag, Num, Text, and/or), checked the same way.

@langchain/redis depends on node-redis v4 (FT.INFO parsed by position, so
the reply's layout matters), which clashes with the redis@6 of
tests/clients/node/package.json: its packages are pinned apart, in
tests/clients/node/langchain/ (package.json, package-lock.json), and npm ci
installs them into <build dir>/node-vectorsets/langchain.  Without npm the
test is skipped (tests/run.sh installs npm); Node.js 20 as for
test_node_redis.py.

engram-only: the harness's Redis 7.0 has no search module."""

import os

from engram_test import engram_only, main
from test_node_redis import CLIENT_DIR, NodeClientCase


@engram_only
class TestLangchain(NodeClientCase):
    PACKAGE_DIR = os.path.join(CLIENT_DIR, "langchain")
    FILES = ("langchain.mjs",)
    INSTALL_DIR = "langchain"
    MARKER = os.path.join("@langchain", "redis")

    def test_langchain_redis_vector_store(self):
        self.run_script("langchain.mjs")


if __name__ == "__main__":
    main()
