/* threads.c — how many threads the library's OpenMP work (its own kernels and
 * oneDNN's, which share one OpenMP pool) runs on. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dynopool_op.h"

/* The CPUs of a cgroup v2 quota ("cpu.max": "QUOTA PERIOD", or "max PERIOD"
 * for none), rounded up; 0 when there is none or it cannot be read. */
static int cgroup_cpus(void)
{
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (!f) return 0;
    char quota[32] = "";
    long long period = 0;
    const int got = fscanf(f, "%31s %lld", quota, &period);
    fclose(f);
    if (got != 2 || period <= 0 || quota[0] < '0' || quota[0] > '9') return 0;
    long long q = 0;
    if (sscanf(quota, "%lld", &q) != 1 || q <= 0) return 0;
    const long long n = (q + period - 1) / period;
    return n > 4096 ? 4096 : (int)n;
}

int dp_threads_available(void)
{
    int n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) n = omp_get_num_procs();
    const int q = cgroup_cpus();
    if (q > 0 && q < n) n = q;
    return n > 0 ? n : 1;
}

/* Busy and total time (clock ticks) of the CPUs in set, from /proc/stat; -1
 * if it cannot be read. */
static int cpu_ticks(const cpu_set_t *set, double *busy, double *total)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[512];
    int found = 0;
    *busy = *total = 0.0;
    while (fgets(line, sizeof line, f)) {
        int cpu;
        unsigned long long v[8] = {0};
        if (strncmp(line, "cpu", 3) || sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0],
                                               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5)
            continue; /* the "cpu " total line has no number: skipped */
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, set)) continue;
        /* user nice system idle iowait irq softirq steal */
        const double b = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
        *busy += b, *total += b + (double)(v[3] + v[4]);
        found++;
    }
    fclose(f);
    return found ? 0 : -1;
}

static double seconds(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Cores of the affinity mask that other processes left idle between two
 * readings (a, then b) of busy ticks, wall and own CPU seconds. */
static int idle_between(const double a[3], const double b[3], int ncpu, long hz, int avail)
{
    const double wall = b[1] - a[1], self = b[2] - a[2];
    if (!(wall > 0.0)) return avail;
    double others = ((b[0] - a[0]) / (double)hz - self) / wall; /* cores kept busy by others */
    if (others < 0.0) others = 0.0;
    const int n = (int)((double)ncpu - others + 0.5);
    return n < 1 ? 1 : n > avail ? avail : n;
}

/* m[0] busy ticks of the mask's CPUs, m[1] wall seconds, m[2] own CPU seconds */
static int mark(const cpu_set_t *set, double m[3])
{
    double total;
    if (cpu_ticks(set, &m[0], &total)) return -1;
    m[1] = seconds(CLOCK_MONOTONIC), m[2] = seconds(CLOCK_PROCESS_CPUTIME_ID);
    return 0;
}

int dp_threads_idle(int ms)
{
    const int avail = dp_threads_available();
    cpu_set_t set;
    const long hz = sysconf(_SC_CLK_TCK);
    double a[3], b[3];
    if (ms <= 0 || hz <= 0 || sched_getaffinity(0, sizeof set, &set) || mark(&set, a)) return avail;
    const struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
    if (mark(&set, b)) return avail;
    return idle_between(a, b, CPU_COUNT(&set), hz, avail);
}

int dp_threads_idle_since(dp_cpu_mark *m)
{
    if (!m) return DP_ERR_NULL;
    const int avail = dp_threads_available();
    cpu_set_t set;
    const long hz = sysconf(_SC_CLK_TCK);
    double now[3];
    if (hz <= 0 || sched_getaffinity(0, sizeof set, &set) || mark(&set, now)) {
        m->valid = 0;
        return avail;
    }
    const int n = m->valid ? idle_between(m->v, now, CPU_COUNT(&set), hz, avail) : avail;
    memcpy(m->v, now, sizeof now);
    m->valid = 1;
    return n;
}

int dp_set_threads(int n)
{
    if (n < 1 || n > 4096) return DP_ERR_ARG;
    omp_set_num_threads(n);
    return DP_OK;
}

int dp_threads(void) { return omp_get_max_threads(); }
