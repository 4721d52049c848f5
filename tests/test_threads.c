/* test_threads.c — the thread counts the library offers (src/op/threads.c):
 * available CPUs, and the idle ones while another process keeps one busy. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dynopool.h"
#include "testutil.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void)
{
    const int avail = dp_threads_available();
    CHECK(avail >= 1, "%d available", avail);
    CHECK(dp_set_threads(0) == DP_ERR_ARG && dp_set_threads(4097) == DP_ERR_ARG, "out of range accepted");
    CHECK(dp_set_threads(1) == DP_OK && dp_threads() == 1, "set 1: %d", dp_threads());
    dp_cpu_mark m = {{0}, 0};
    CHECK(dp_threads_idle_since(&m) == avail, "a fresh mark gives the available CPUs");
    CHECK(dp_threads_idle_since(NULL) == DP_ERR_NULL, "NULL mark");
    int idle = dp_threads_idle(100);
    CHECK(idle >= 1 && idle <= avail, "idle %d of %d", idle, avail);
    if (avail >= 2) { /* one busy process: at least one core is no longer idle */
        dp_threads_idle_since(&m);
        const pid_t child = fork();
        if (child == 0) {
            const double t0 = now();
            volatile unsigned long spin = 0;
            while (now() - t0 < 0.6) spin++;
            _exit(0);
        }
        const int during = dp_threads_idle(400);
        waitpid(child, NULL, 0);
        const int since = dp_threads_idle_since(&m);
        CHECK(during <= avail - 1, "with one busy process, %d of %d idle (sleeping measure)", during, avail);
        CHECK(since <= avail - 1, "with one busy process, %d of %d idle (since the mark)", since, avail);
        printf("available %d; with one busy process: %d idle (400 ms), %d since the mark\n", avail, during, since);
    }
    return tu_finish("test_threads");
}
