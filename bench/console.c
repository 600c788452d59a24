// SPDX-License-Identifier: LGPL-2.1-or-later
// bench/console: the console relay (vmb_splice's connect queue and relay) against a direct websocket
// connection to QEMU and against websockify, on one real QEMU guest, in the same run.
//   bench-console [seconds-per-throughput-round]   (default 15; 2 rounds each way + 2 paired)
//   VMB_BENCH_BUFFER=bytes sets the engine's per-direction buffer (default 64 KiB, as console.buffer_bytes).
// (a) 20 consoles requesting full raw framebuffer updates in a loop: frames/s per console,
//     and relay CPU seconds per GB; (b) connect to first RFB byte, p50/p99 of 200;
// (c) RSS and fds of 1,000 idle pairs. Prints one table with ratios.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console-client.h"
#include "vmb-splice.h"
#include "vmb-wsupstream.h"

#define PORT_LO 6400
#define PORT_HI 6499
#define PASSWORD "b3nchPw"
#define CONSOLES 20
#define CONNECTS 200
#define IDLE_PAIRS 1000
#define ROUNDS 2

typedef enum { MODE_DIRECT, MODE_SPLICE, MODE_WEBSOCKIFY } Mode;

static TestQemu qemu;
static GPid websockify_pid;
static unsigned websockify_port;
static VmbSplice *engine;

static void
cleanup(void)
{
    test_qemu_stop(&qemu);
    if (websockify_pid > 0) {
        kill(websockify_pid, SIGTERM);
        waitpid(websockify_pid, NULL, 0);
        websockify_pid = 0;
    }
}

static G_NORETURN void
die(const char *what, const GError *error)
{
    fprintf(stderr, "bench-console: %s: %s\n", what, error ? error->message : g_strerror(errno));
    cleanup();
    exit(1);
}

/* Two connected loopback TCP sockets: [0] the browser's, [1] the broker's. */
static void
tcp_pair(int fds[2])
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *) &sa, &len) < 0)
        die("listen", NULL);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *) &sa, sizeof(sa)) < 0)
        die("connect", NULL);
    fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fds[1] < 0)
        die("accept", NULL);
    close(lfd);
}

typedef struct {
    GMutex lock;
    GCond cond;
    int client_fd;  /* the broker's end, closed when the engine is done with it */
    bool done;
} PairDone;

static void
pair_done(void *data)
{
    PairDone *d = data;

    g_mutex_lock(&d->lock);
    if (d->client_fd >= 0)
        close(d->client_fd);
    d->done = true;
    g_cond_signal(&d->cond);
    g_mutex_unlock(&d->lock);
}

/* A console as a browser sees it: the fd it reads websocket frames from. */
typedef struct {
    int fd;
    GBytes *first;    /* bytes that came with the 101 (direct modes) */
    PairDone *done;   /* MODE_SPLICE only */
} Console;

/* A connect through the engine's queue, waited for as the broker's suspended request is. */
typedef struct {
    GMutex lock;
    GCond cond;
    bool done;
    VmbWsUpstream up;
    GError *error;
} ConnectWait;

static void
connect_done(VmbWsUpstream *up, const GError *error, void *data)
{
    ConnectWait *w = data;

    g_mutex_lock(&w->lock);
    if (up) {
        w->up = *up;
        *up = (VmbWsUpstream) VMB_WSUPSTREAM_INIT;
    } else {
        w->error = g_error_copy(error);
    }
    w->done = true;
    g_cond_signal(&w->cond);
    g_mutex_unlock(&w->lock);
}

static bool
engine_connect(const char *key, VmbWsUpstream *ret, GError **error)
{
    ConnectWait w = { .up = VMB_WSUPSTREAM_INIT };
    bool ok;

    g_mutex_init(&w.lock);
    g_cond_init(&w.cond);
    ok = vmb_splice_connect(engine, "127.0.0.1", qemu.ws_port, key, "binary", 30000, 60000,
                            connect_done, &w, error);
    g_mutex_lock(&w.lock);
    while (ok && !w.done)
        g_cond_wait(&w.cond, &w.lock);
    g_mutex_unlock(&w.lock);
    g_mutex_clear(&w.lock);
    g_cond_clear(&w.cond);
    if (ok && w.error) {
        g_propagate_error(error, w.error);
        ok = false;
    }
    if (ok)
        *ret = w.up;
    return ok;
}

/* The bench's own connects to QEMU or websockify, one at a time as the engine's are: QEMU
 * listens with a backlog of 1, and the connect is not what the throughput rounds measure. */
static GMutex direct_connects;

static bool
console_open(Mode mode, const char *tag, Console *ret, GError **error)
{
    g_autofree char *key = ws_random_key();
    g_auto(VmbWsUpstream) up = VMB_WSUPSTREAM_INIT;
    unsigned port = mode == MODE_WEBSOCKIFY ? websockify_port : qemu.ws_port;
    int fds[2];
    bool ok;

    if (mode == MODE_SPLICE) {
        ok = engine_connect(key, &up, error);
    } else {
        g_mutex_lock(&direct_connects);
        ok = vmb_wsupstream_connect("127.0.0.1", port, NULL, key, "binary", 30000, &up, error);
        g_mutex_unlock(&direct_connects);
    }
    if (!ok)
        return false;
    if (mode != MODE_SPLICE) {
        int flags = fcntl(up.fd, F_GETFL);
        fcntl(up.fd, F_SETFL, flags & ~O_NONBLOCK);
        ret->fd = up.fd;
        ret->first = g_bytes_ref(up.leftover);
        ret->done = NULL;
        up.fd = -1;
        return true;
    }
    tcp_pair(fds);
    ret->fd = fds[0];
    ret->first = NULL;
    ret->done = g_new0(PairDone, 1);
    g_mutex_init(&ret->done->lock);
    g_cond_init(&ret->done->cond);
    ret->done->client_fd = fds[1];
    if (!vmb_splice_add(engine, fds[1], up.fd, up.leftover, NULL, tag, pair_done, ret->done,
                        error)) {
        up.fd = -1;
        return false;
    }
    up.fd = -1;
    return true;
}

static void
console_client_init(Console *c, WsClient *ws)
{
    ws_client_init(ws, c->fd);
    if (c->first)
        ws_client_push(ws, g_bytes_get_data(c->first, NULL), g_bytes_get_size(c->first));
}

static void
console_close(Console *c)
{
    close(c->fd);
    g_clear_pointer(&c->first, g_bytes_unref);
    if (c->done) {
        /* The engine sees EOF, passes it on, QEMU closes: wait for that before reusing. */
        g_mutex_lock(&c->done->lock);
        while (!c->done->done)
            g_cond_wait(&c->done->cond, &c->done->lock);
        g_mutex_unlock(&c->done->lock);
        g_mutex_clear(&c->done->lock);
        g_cond_clear(&c->done->cond);
        g_clear_pointer(&c->done, g_free);
    }
}

/* ---- (a) throughput ---- */

typedef struct {
    Mode mode;
    unsigned index;
    gint64 start_us;
    gint64 end_us;
    guint64 frames;
    guint64 bytes;
    char *error;
} Worker;

static gpointer
worker_main(gpointer data)
{
    Worker *w = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *tag = g_strdup_printf("c%u", w->index);
    RfbServerInit si = { 0 };
    Console c;
    WsClient ws;

    if (!console_open(w->mode, tag, &c, &error)) {
        w->error = g_strdup(error->message);
        return NULL;
    }
    console_client_init(&c, &ws);
    if (!rfb_handshake(&ws, PASSWORD, &si, &error) || !rfb_set_encodings(&ws, &error))
        goto out;
    /* Start together: frames before start_us are warm-up. */
    while (g_get_monotonic_time() < w->start_us)
        g_usleep(1000);
    while (g_get_monotonic_time() < w->end_us) {
        guint64 pixels = 0;
        if (!rfb_request_update(&ws, &si, false, &error) ||
            !rfb_read_update(&ws, &si, &pixels, &error))
            goto out;
        if (pixels == (guint64) si.width * si.height * (si.bits_per_pixel / 8)) {
            w->frames++;
            w->bytes += pixels;
        }
    }
out:
    if (error)
        w->error = g_strdup(error->message);
    g_free(si.name);
    ws_client_clear(&ws);
    console_close(&c);
    return NULL;
}

/* utime + stime in seconds: of a thread of ours (by name), or of a process and its reaped
 * children. */
static double
cpu_seconds_of_stat(const char *path, bool with_children)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *after;
    double ticks = (double) sysconf(_SC_CLK_TCK);

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    after = strrchr(text, ')');
    if (!after)
        return 0;
    f = g_strsplit(after + 2, " ", -1);
    /* Fields from state (3) on: utime is 14, stime 15, cutime 16, cstime 17. */
    if (g_strv_length(f) < 15)
        return 0;
    return (g_ascii_strtod(f[11], NULL) + g_ascii_strtod(f[12], NULL) +
            (with_children ? g_ascii_strtod(f[13], NULL) + g_ascii_strtod(f[14], NULL) : 0)) /
           ticks;
}

static double
engine_cpu_seconds(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/task", 0, NULL);
    const char *tid;

    while (d && (tid = g_dir_read_name(d))) {
        g_autofree char *comm_path = g_strdup_printf("/proc/self/task/%s/comm", tid);
        g_autofree char *comm = NULL;
        if (g_file_get_contents(comm_path, &comm, NULL, NULL) &&
            g_str_has_prefix(comm, "vmb-splice")) {
            g_autofree char *stat = g_strdup_printf("/proc/self/task/%s/stat", tid);
            return cpu_seconds_of_stat(stat, false);
        }
    }
    return 0;
}

/* Children of @pid still there, zombies included. */
static unsigned
children_of(GPid pid)
{
    g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
    const char *name;
    unsigned n = 0;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = NULL;
        g_autofree char *text = NULL;
        const char *after;

        if (!g_ascii_isdigit(name[0]))
            continue;
        path = g_strdup_printf("/proc/%s/stat", name);
        if (!g_file_get_contents(path, &text, NULL, NULL) || !(after = strrchr(text, ')')))
            continue;
        /* ") S ppid ...": the field after the state. */
        if (strlen(after) > 4 && (GPid) strtol(after + 4, NULL, 10) == pid)
            n++;
    }
    return n;
}

/* websockify forks a child per connection, whose CPU counts in its cutime/cstime only once
 * websockify has reaped it: wait until it has no child left at all (30 s at most). */
static bool
websockify_children_reaped(void)
{
    for (unsigned i = 0; i < 300; i++) {
        if (children_of(websockify_pid) == 0)
            return true;
        g_usleep(100 * 1000);
    }
    return false;
}

static double
websockify_cpu_seconds(void)
{
    g_autofree char *stat = g_strdup_printf("/proc/%d/stat", websockify_pid);

    return cpu_seconds_of_stat(stat, true);
}

typedef struct {
    double fps;        /* frames/s per console, mean over the consoles that connected */
    double fps_mixed_direct;  /* mixed rounds: the direct half... */
    double fps_mixed_splice;  /* ...and the half through the engine, in the same seconds */
    unsigned failed;   /* consoles that did not connect or broke */
    double cpu_per_gb; /* relay CPU seconds per GB relayed; < 0 when not applicable */
    double gbytes;
} Throughput;

/* @mixed: even consoles direct, odd ones through the engine, all at once, so that both
 * halves see the same guest and the same QEMU load (sequential rounds drift a lot). */
static Throughput
run_throughput(Mode mode, bool mixed, unsigned seconds)
{
    double frames_mode[3] = { 0 };
    unsigned ok_mode[3] = { 0 };
    Worker w[CONSOLES];
    GThread *t[CONSOLES];
    gint64 start = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    VmbSpliceStats st0, st1;
    double cpu0 = 0, cpu1 = 0, frames = 0, bytes = 0;
    Throughput r = { .cpu_per_gb = -1 };

    vmb_splice_stats(engine, &st0);
    for (unsigned i = 0; i < CONSOLES; i++) {
        w[i] = (Worker) { .mode = mixed ? (i % 2 ? MODE_SPLICE : MODE_DIRECT) : mode,
                          .index = i, .start_us = start,
                          .end_us = start + (gint64) seconds * G_USEC_PER_SEC };
        t[i] = g_thread_new("console", worker_main, &w[i]);
    }
    while (g_get_monotonic_time() < start)
        g_usleep(1000);
    cpu0 = mode == MODE_SPLICE || mixed ? engine_cpu_seconds() : 0;
    while (g_get_monotonic_time() < start + (gint64) seconds * G_USEC_PER_SEC)
        g_usleep(10000);
    cpu1 = mode == MODE_SPLICE || mixed ? engine_cpu_seconds() : 0;
    vmb_splice_stats(engine, &st1);
    for (unsigned i = 0; i < CONSOLES; i++) {
        g_thread_join(t[i]);
        if (w[i].error) {
            fprintf(stderr, "console %u: %s\n", i, w[i].error);
            g_free(w[i].error);
            r.failed++;
        } else {
            ok_mode[w[i].mode]++;
        }
        frames_mode[w[i].mode] += (double) w[i].frames;
        frames += (double) w[i].frames;
        bytes += (double) w[i].bytes;
    }
    r.fps = r.failed < CONSOLES ? frames / (CONSOLES - r.failed) / seconds : 0;
    if (ok_mode[MODE_DIRECT])
        r.fps_mixed_direct = frames_mode[MODE_DIRECT] / ok_mode[MODE_DIRECT] / seconds;
    if (ok_mode[MODE_SPLICE])
        r.fps_mixed_splice = frames_mode[MODE_SPLICE] / ok_mode[MODE_SPLICE] / seconds;
    /* QEMU tears the last round's connections down in its own time. */
    g_usleep(2 * G_USEC_PER_SEC);
    r.gbytes = bytes / 1e9;
    if (mode == MODE_SPLICE || mixed) {
        double relayed = (double) (st1.bytes_in + st1.bytes_out - st0.bytes_in - st0.bytes_out);
        r.cpu_per_gb = relayed > 0 ? (cpu1 - cpu0) / (relayed / 1e9) : -1;
    }
    return r;
}

/* ---- (b) connect to first RFB byte ---- */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static void
connect_times(Mode mode, double *ret_p50, double *ret_p99)
{
    double ms[CONNECTS];

    for (unsigned i = 0; i < CONNECTS; i++) {
        g_autoptr(GError) error = NULL;
        guint8 version[12];
        gint64 t0 = g_get_monotonic_time();
        Console c;
        WsClient ws;

        if (!console_open(mode, "connect", &c, &error))
            die("connect", error);
        console_client_init(&c, &ws);
        if (!ws_recv(&ws, version, sizeof(version), &error))
            die("first RFB bytes", error);
        ms[i] = (double) (g_get_monotonic_time() - t0) / 1000.0;
        ws_client_clear(&ws);
        console_close(&c);
    }
    qsort(ms, CONNECTS, sizeof(ms[0]), cmp_double);
    *ret_p50 = ms[CONNECTS / 2];
    *ret_p99 = ms[CONNECTS * 99 / 100];
}

/* ---- (c) idle pairs ---- */

static long
rss_kib(void)
{
    g_autofree char *status = NULL;
    const char *p;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL) ||
        !(p = strstr(status, "VmRSS:")))
        return -1;
    return strtol(p + 6, NULL, 10);
}

static unsigned
count_fds(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
    unsigned n = 0;

    while (d && g_dir_read_name(d))
        n++;
    return n;
}

static void
close_fd_done(void *data)
{
    close(GPOINTER_TO_INT(data));
}

static void
idle_pairs(double *ret_kib_per_pair, double *ret_fds_per_pair, guint64 *ret_buffer_memory)
{
    static int ends[IDLE_PAIRS][2];    /* the bench's own ends: client, upstream */
    long rss0, rss1;
    unsigned fds0, fds1;
    VmbSpliceStats st;
    char buf[64];

    rss0 = rss_kib();
    fds0 = count_fds();
    for (unsigned i = 0; i < IDLE_PAIRS; i++) {
        int c[2], u[2];
        g_autoptr(GError) error = NULL;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u) < 0)
            die("socketpair", NULL);
        ends[i][0] = c[0];
        ends[i][1] = u[0];
        /* The lent client fd is closed when the engine is done, as MHD would. */
        if (!vmb_splice_add(engine, c[1], u[1], NULL, NULL, "idle", close_fd_done,
                            GINT_TO_POINTER(c[1]), &error))
            die("add", error);
        /* One exchange each way, so that buffers had their chance to be allocated. */
        if (write(c[0], "hello", 5) != 5 || read(u[0], buf, sizeof(buf)) != 5 ||
            write(u[0], "RFB 003.008\n", 12) != 12 || read(c[0], buf, sizeof(buf)) != 12)
            die("idle exchange", NULL);
    }
    rss1 = rss_kib();
    fds1 = count_fds();
    vmb_splice_stats(engine, &st);
    *ret_kib_per_pair = (double) (rss1 - rss0) / IDLE_PAIRS;
    /* Of the 4 new fds per pair, 2 are the bench's own ends: count the broker's side. */
    *ret_fds_per_pair = (double) (fds1 - fds0) / IDLE_PAIRS - 2;
    *ret_buffer_memory = st.buffer_memory;
    vmb_splice_close_tag(engine, "idle", "bench");
    for (unsigned i = 0; i < IDLE_PAIRS; i++) {
        close(ends[i][0]);
        close(ends[i][1]);
    }
}

static void
start_websockify(void)
{
    for (unsigned port = PORT_LO; port <= PORT_HI; port++) {
        g_autofree char *listen_arg = g_strdup_printf("127.0.0.1:%u", port);
        g_autofree char *target = g_strdup_printf("127.0.0.1:%u", qemu.vnc_port);
        const char *argv[] = { "websockify", listen_arg, target, NULL };
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((guint16) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool is_free = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;

        close(fd);
        if (!is_free || port == qemu.vnc_port || port == qemu.ws_port)
            continue;
        if (!g_spawn_async(NULL, (char **) argv, NULL,
                           G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                               G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                           NULL, NULL, &websockify_pid, NULL))
            return;
        for (unsigned t = 0; t < 100; t++) {
            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
                close(fd);
                websockify_port = port;
                return;
            }
            close(fd);
            g_usleep(100 * 1000);
        }
        kill(websockify_pid, SIGTERM);
        waitpid(websockify_pid, NULL, 0);
        websockify_pid = 0;
    }
}

/* websockify's connect times and throughput round; its CPU counts every child it forked
 * for the round's connections. */
static Throughput
websockify_rounds(unsigned seconds, double *ret_p50, double *ret_p99)
{
    Throughput r = { .fps = -1, .cpu_per_gb = -1 };
    double cpu0;

    start_websockify();
    if (!websockify_port)
        return r;
    fprintf(stderr, "websockify on %u: connect times, throughput...\n", websockify_port);
    connect_times(MODE_WEBSOCKIFY, ret_p50, ret_p99);
    if (!websockify_children_reaped())
        die("websockify kept children of the connect round", NULL);
    cpu0 = websockify_cpu_seconds();
    r = run_throughput(MODE_WEBSOCKIFY, false, seconds);
    if (!websockify_children_reaped())
        die("websockify kept children of the throughput round", NULL);
    r.cpu_per_gb = r.gbytes > 0 ? (websockify_cpu_seconds() - cpu0) / r.gbytes : -1;
    return r;
}

static void
ratio(char *buf, size_t len, double x, double ref)
{
    if (ref > 0 && x >= 0)
        g_snprintf(buf, len, "%.3f", x / ref);
    else
        g_snprintf(buf, len, "-");
}

/* What one run measured. */
typedef struct {
    unsigned seconds;
    size_t buffer_size;
    bool have_websockify;
    Throughput direct[ROUNDS], spliced[ROUNDS], mixed[ROUNDS], wsfy;
    double d50, d99, s50, s99, w50, w99, kib, fds;
    guint64 idle_mem;
} Results;

static void
measure(Results *r)
{
    fprintf(stderr, "(c) idle pairs...\n");
    idle_pairs(&r->kib, &r->fds, &r->idle_mem);
    fprintf(stderr, "(b) connect times...\n");
    connect_times(MODE_DIRECT, &r->d50, &r->d99);
    connect_times(MODE_SPLICE, &r->s50, &r->s99);
    /* Alternate the throughput rounds so that drift in the guest hits both alike. */
    for (unsigned round = 0; round < ROUNDS; round++) {
        fprintf(stderr, "(a) throughput round %u: direct...\n", round + 1);
        r->direct[round] = run_throughput(MODE_DIRECT, false, r->seconds);
        fprintf(stderr, "(a) throughput round %u: through vmb_splice...\n", round + 1);
        r->spliced[round] = run_throughput(MODE_SPLICE, false, r->seconds);
    }
    for (unsigned round = 0; round < ROUNDS; round++) {
        fprintf(stderr, "(a) mixed round %u: 10 direct + 10 through vmb_splice at once...\n",
                round + 1);
        r->mixed[round] = run_throughput(MODE_DIRECT, true, r->seconds);
    }
    if (r->have_websockify)
        r->wsfy = websockify_rounds(r->seconds, &r->w50, &r->w99);
}

static void
print_results(const Results *r)
{
    double d_fps = 0, s_fps = 0, s_cpu = 0, md_fps = 0, ms_fps = 0;
    unsigned d_failed = 0, s_failed = 0;
    char r1[16], r2[16];

    for (unsigned round = 0; round < ROUNDS; round++) {
        d_fps += r->direct[round].fps / ROUNDS;
        s_fps += r->spliced[round].fps / ROUNDS;
        s_cpu += r->spliced[round].cpu_per_gb / ROUNDS;
        md_fps += r->mixed[round].fps_mixed_direct / ROUNDS;
        ms_fps += r->mixed[round].fps_mixed_splice / ROUNDS;
        d_failed += r->direct[round].failed + r->mixed[round].failed;
        s_failed += r->spliced[round].failed;
    }
    printf("bench/console: 1 QEMU (TCG, memtest86+), %u consoles, %u s x %u rounds each way, "
           "raw full-screen updates, engine buffer %zu B\n", CONSOLES, r->seconds, ROUNDS,
           r->buffer_size);
    printf("%-36s %10s %10s %8s %11s %8s  %s\n", "", "direct", "vmbroker", "ratio",
           "websockify", "ratio", "target");
    ratio(r1, sizeof(r1), s_fps, d_fps);
    ratio(r2, sizeof(r2), r->wsfy.fps, d_fps);
    printf("%-36s %10.2f %10.2f %8s %11.2f %8s  %s\n", "frames/s per console", d_fps, s_fps,
           r1, r->wsfy.fps, r2, ">= 0.95");
    ratio(r1, sizeof(r1), ms_fps, md_fps);
    printf("%-36s %10.2f %10.2f %8s %11s %8s  %s\n", "  same, 10+10 at once (paired)", md_fps,
           ms_fps, r1, "", "", ">= 0.95");
    printf("%-36s %10s %10.2f %8s %11.2f %8s  %s\n", "relay CPU s per GB relayed", "-",
           s_cpu, "", r->wsfy.cpu_per_gb, "", "");
    printf("%-36s %10.3f %10.3f %+7.3f %11.3f %+7.3f  %s\n", "connect->first RFB byte p50 ms",
           r->d50, r->s50, r->s50 - r->d50, r->w50, r->w50 - r->d50, "<= +2 ms");
    printf("%-36s %10.3f %10.3f %+7.3f %11.3f %+7.3f  %s\n", "connect->first RFB byte p99 ms",
           r->d99, r->s99, r->s99 - r->d99, r->w99, r->w99 - r->d99, "");
    printf("%-36s %10s %10.1f %8s %11s %8s  %s\n", "RSS per idle pair KiB (1,000 pairs)", "-",
           r->kib, "", "-", "", "<= 64");
    printf("%-36s %10s %10.1f %8s %11s %8s  %s\n", "fds per idle pair, broker side", "-",
           r->fds, "", "-", "", "");
    printf("%-36s %10s %10" G_GUINT64_FORMAT " %8s %11s %8s  %s\n",
           "buffer bytes held by 1,000 idle", "-", r->idle_mem, "", "-", "", "");
    printf("rounds (fps):");
    for (unsigned round = 0; round < ROUNDS; round++)
        printf(" direct %.2f vmbroker %.2f (paired %.2f/%.2f);", r->direct[round].fps,
               r->spliced[round].fps, r->mixed[round].fps_mixed_direct,
               r->mixed[round].fps_mixed_splice);
    printf(" consoles failed: direct %u, vmbroker %u, websockify %u%s\n", d_failed, s_failed,
           r->wsfy.failed, r->have_websockify ? "" : "; websockify not installed");
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *wsf = g_find_program_in_path("websockify");
    const char *buffer_env = g_getenv("VMB_BENCH_BUFFER");
    VmbSpliceOptions opts = { .buffer_size = buffer_env ? g_ascii_strtoull(buffer_env, NULL, 10) : 0 };
    Results r = {
        .seconds = argc > 1 ? (unsigned) g_ascii_strtoull(argv[1], NULL, 10) : 10,
        .have_websockify = wsf != NULL,
        .wsfy = { .fps = -1, .cpu_per_gb = -1 },
        .w50 = -1,
        .w99 = -1,
    };
    struct rlimit rl;

    if (r.seconds == 0)
        r.seconds = 15;
    r.buffer_size = opts.buffer_size ? opts.buffer_size : (size_t) VMB_SPLICE_DEFAULT_BUFFER;
    if (!test_qemu_available()) {
        fprintf(stderr, "bench-console: needs qemu-system-x86_64 and %s\n", TEST_QEMU_ISO);
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!test_qemu_start(&qemu, PASSWORD, PORT_LO, PORT_HI, &error))
        die("QEMU", error);
    atexit(cleanup);
    engine = vmb_splice_new(&opts, &error);
    if (!engine)
        die("engine", error);
    /* Let the guest reach its steady screen before measuring. */
    g_usleep(3 * G_USEC_PER_SEC);

    measure(&r);
    print_results(&r);

    vmb_splice_free(engine);
    cleanup();
    return 0;
}
