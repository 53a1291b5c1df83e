// hnswlib_ann.cpp -- the same benchmark as bench_ann.c, on Debian's hnswlib
// (header-only, /usr/include/hnswlib), so engram can be compared with the
// native library on the same data in the same run (bench/ann.sh).
//
//   hnswlib_ann --base B.fvecs --query Q.fvecs --gt G.ivecs [--M 16]
//               [--efc 200] [--ef 10,20,...] [--metric l2|cosine|ip] [--k 10]
//               [--min-queries 10000] [--seed N]
//
// Output lines match bench_ann's, with "engine":"hnswlib".  Single thread:
// points are added one by one and queries run one at a time.  For cosine the
// vectors are normalised here and searched with InnerProductSpace, which is
// what engram does internally.  Benchmark tooling only: never linked into
// the server.
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Vecs {
    uint32_t n = 0, dim = 0;
    std::vector<float> f;     // fvecs payload
    std::vector<int32_t> i;   // ivecs payload
};

double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// This thread's CPU time (see bench_ann.c: the "cpu_" fields).
double cpu_s()
{
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

[[noreturn]] void die(const std::string &msg)
{
    std::fprintf(stderr, "hnswlib_ann: %s\n", msg.c_str());
    std::exit(2);
}

Vecs read_vecs(const char *path, bool ints)
{
    FILE *f = std::fopen(path, "rb");
    if (!f) die(std::string("cannot open ") + path);
    int32_t d = 0;
    if (std::fread(&d, 4, 1, f) != 1 || d <= 0) die(std::string("bad header in ") + path);
    std::fseek(f, 0, SEEK_END);
    long bytes = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    size_t rec = 4 + size_t(d) * 4;
    if (bytes <= 0 || size_t(bytes) % rec) die(std::string("bad size: ") + path);
    Vecs v;
    v.n = uint32_t(size_t(bytes) / rec);
    v.dim = uint32_t(d);
    if (ints) v.i.resize(size_t(v.n) * v.dim);
    else v.f.resize(size_t(v.n) * v.dim);
    for (uint32_t r = 0; r < v.n; r++) {
        int32_t di;
        void *dst = ints ? static_cast<void *>(&v.i[size_t(r) * v.dim])
                         : static_cast<void *>(&v.f[size_t(r) * v.dim]);
        if (std::fread(&di, 4, 1, f) != 1 || di != d || std::fread(dst, 4, v.dim, f) != v.dim)
            die(std::string("short record in ") + path);
    }
    std::fclose(f);
    return v;
}

void normalise(Vecs &v)
{
    for (uint32_t r = 0; r < v.n; r++) {
        float *x = &v.f[size_t(r) * v.dim];
        double s = 0;
        for (uint32_t j = 0; j < v.dim; j++) s += double(x[j]) * x[j];
        double n = std::sqrt(s);
        for (uint32_t j = 0; j < v.dim; j++) x[j] = n > 0 ? float(x[j] / n) : 0.0f;
    }
}

std::string dataset_name(const char *path)
{
    std::string s(path);
    size_t slash = s.rfind('/');
    if (slash != std::string::npos) s = s.substr(slash + 1);
    size_t u = s.find("_base");
    if (u == std::string::npos) u = s.rfind('.');
    return u == std::string::npos ? s : s.substr(0, u);
}

struct Opts {
    const char *base = nullptr, *query = nullptr, *gt = nullptr;
    std::string ef = "10,20,40,80,120,200,400", metric = "l2";
    uint32_t M = 16, efc = 200, k = 10, min_queries = 10000;
    uint64_t seed = 42;
};

Opts parse(int argc, char **argv)
{
    Opts o;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) die(std::string("missing value for ") + argv[i]);
        std::string a = argv[i];
        const char *v = argv[i + 1];
        if (a == "--base") o.base = v;
        else if (a == "--query") o.query = v;
        else if (a == "--gt") o.gt = v;
        else if (a == "--ef") o.ef = v;
        else if (a == "--metric") o.metric = v;
        else if (a == "--M") o.M = uint32_t(std::atoi(v));
        else if (a == "--efc") o.efc = uint32_t(std::atoi(v));
        else if (a == "--k") o.k = uint32_t(std::atoi(v));
        else if (a == "--min-queries") o.min_queries = uint32_t(std::atoi(v));
        else if (a == "--seed") o.seed = std::strtoull(v, nullptr, 10);
        else if (a == "--kernel" || a == "--type") continue;   // engram-only options
        else die("unknown option " + a);
    }
    if (!o.base || !o.query || !o.gt) die("need --base, --query and --gt");
    return o;
}

}  // namespace

int main(int argc, char **argv)
{
    Opts o = parse(argc, argv);
    Vecs base = read_vecs(o.base, false), q = read_vecs(o.query, false), gt = read_vecs(o.gt, true);
    if (q.dim != base.dim || gt.n < q.n) die("base, query and ground truth do not match");
    bool l2 = o.metric == "l2" || o.metric == "euclidean";
    if (o.metric == "cosine") {
        normalise(base);
        normalise(q);
    }
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    if (l2) space.reset(new hnswlib::L2Space(base.dim));
    else space.reset(new hnswlib::InnerProductSpace(base.dim));
    std::string ds = dataset_name(o.base);

    hnswlib::HierarchicalNSW<float> index(space.get(), base.n, o.M, o.efc, o.seed);
    double t0 = now_s(), c0 = cpu_s();
    for (uint32_t r = 0; r < base.n; r++) index.addPoint(&base.f[size_t(r) * base.dim], r);
    double t = now_s() - t0, ct = cpu_s() - c0;
    // Graph + vectors as hnswlib lays them out (level-0 record with label,
    // link-list pointer, level, upper lists); its per-element mutexes and
    // label hash map are left out.
    double core = 0;
    for (uint32_t r = 0; r < base.n; r++)
        core += double(index.size_data_per_element_ + sizeof(char *) + sizeof(int) +
                       index.size_links_per_element_ * size_t(index.element_levels_[r]));
    std::printf("{\"bench\":\"ann\",\"engine\":\"hnswlib\",\"phase\":\"build\",\"dataset\":\"%s\","
                "\"type\":\"hnsw\",\"n\":%u,\"dim\":%u,\"metric\":\"%s\",\"M\":%u,\"efc\":%u,"
                "\"build_s\":%.3f,\"inserts_per_s\":%.1f,\"cpu_inserts_per_s\":%.1f,"
                "\"core_bytes_per_vector\":%.1f}\n",
                ds.c_str(), base.n, base.dim, o.metric.c_str(), o.M, o.efc, t, base.n / t, base.n / ct,
                core / base.n);
    std::fflush(stdout);

    std::string list = o.ef;
    size_t pos = 0;
    while (pos <= list.size()) {
        size_t comma = list.find(',', pos);
        if (comma == std::string::npos) comma = list.size();
        uint32_t ef = uint32_t(std::atoi(list.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
        if (!ef) continue;
        index.setEf(std::max(ef, o.k));
        uint32_t passes = (o.min_queries + q.n - 1) / q.n, total = passes * q.n, hit = 0;
        std::vector<double> lat(total);
        double s0 = now_s(), sc0 = cpu_s();
        for (uint32_t r = 0; r < total; r++) {
            uint32_t qi = r % q.n;
            double t1 = now_s();
            auto res = index.searchKnn(&q.f[size_t(qi) * q.dim], o.k);
            lat[r] = now_s() - t1;
            if (r >= q.n) continue;
            const int32_t *g = &gt.i[size_t(qi) * gt.dim];
            while (!res.empty()) {
                uint32_t id = uint32_t(res.top().second);
                res.pop();
                for (uint32_t b = 0; b < o.k && b < gt.dim; b++)
                    if (uint32_t(g[b]) == id) { hit++; break; }
            }
        }
        double st = now_s() - s0, sct = cpu_s() - sc0, sum = 0;
        for (double x : lat) sum += x;
        std::sort(lat.begin(), lat.end());
        std::printf("{\"bench\":\"ann\",\"engine\":\"hnswlib\",\"phase\":\"search\",\"dataset\":\"%s\","
                    "\"M\":%u,\"efc\":%u,\"ef\":%u,\"k\":%u,\"recall\":%.4f,\"qps\":%.1f,"
                    "\"cpu_qps\":%.1f,\"mean_us\":%.2f,\"p99_us\":%.2f,\"queries\":%u}\n",
                    ds.c_str(), o.M, o.efc, ef, o.k, double(hit) / (double(q.n) * o.k), total / st,
                    total / sct,
                    sum / total * 1e6, lat[size_t(total * 0.99)] * 1e6, total);
        std::fflush(stdout);
    }
    return 0;
}
