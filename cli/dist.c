/* dist.c — Open MPI for `dynopool train` (dist.h; docs/distributed.md).  The
 * library links no MPI: it is given dp_comm, whose callbacks are here. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"

static int g_rank = 0, g_size = 1;
static double g_comm_s = 0.0;

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
double dist_comm_seconds(void) { return g_comm_s; }

#ifdef DYNOPOOL_MPI
#include <mpi.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int g_init = 0;
enum { MAX_REQ = 4096 };
static MPI_Request g_req[MAX_REQ];
static int g_nreq = 0;

int dist_available(void) { return 1; }

int dist_init(int *argc, char ***argv)
{
    /* only under a launcher: a plain `dynopool train` stays a single process
     * that needs no MPI runtime at all */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK")) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cli_fail("MPI_Init failed");
    g_init = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    /* a failed sum (a rank died) returns here, to be said before the job ends */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (g_rank > 0 && !freopen("/dev/null", "w", stdout)) return cli_fail("rank %d: cannot silence stdout", g_rank);
    return 0;
}

void dist_finalize(int agreed)
{
    if (g_init && !agreed && g_size > 1) {
        fprintf(stderr, "dynopool train: rank %d failed alone: ending all %d ranks (MPI_Abort)\n", g_rank, g_size);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (g_init) MPI_Finalize();
    g_init = 0;
}

/* Says once which sum failed and why; returns 1. */
static int failed(const char *what, int rc)
{
    static int said;
    if (!said++) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        fprintf(stderr, "dynopool train: rank %d of %d: %s failed (%s): another rank has probably died; the run "
                "folder keeps the last checkpoint (continue with --resume)\n", g_rank, g_size, what, msg);
    }
    return 1;
}

static int c_allreduce(void *ctx, void *buf, long long n, int type)
{
    (void)ctx;
    const double t0 = now_s();
    int rc = MPI_SUCCESS;
    const MPI_Datatype dt = type == DP_COMM_F64 ? MPI_DOUBLE : MPI_FLOAT;
    const size_t es = type == DP_COMM_F64 ? 8 : 4;
    for (long long o = 0; o < n && rc == MPI_SUCCESS; o += 1 << 30) { /* MPI counts are ints */
        const int k = (int)(n - o < (1LL << 30) ? n - o : 1LL << 30);
        rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + es * (size_t)o, k, dt, MPI_SUM, MPI_COMM_WORLD);
    }
    g_comm_s += now_s() - t0;
    return rc != MPI_SUCCESS ? failed("MPI_Allreduce", rc) : 0;
}

static int c_istart(void *ctx, float *buf, long long n)
{
    (void)ctx;
    if (g_nreq == MAX_REQ || n > (1LL << 30)) return -1;
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &g_req[g_nreq]);
    if (rc != MPI_SUCCESS) return failed("MPI_Iallreduce", rc), -1;
    /* let the collectives started so far advance (Open MPI's progress runs
     * inside MPI calls) */
    int flag;
    MPI_Testall(g_nreq + 1, g_req, &flag, MPI_STATUSES_IGNORE);
    return g_nreq++;
}

static int c_wait(void *ctx, int h)
{
    (void)ctx;
    const double t0 = now_s();
    const int rc = MPI_Wait(&g_req[h], MPI_STATUS_IGNORE);
    if (h == g_nreq - 1) g_nreq = 0;
    g_comm_s += now_s() - t0;
    return rc != MPI_SUCCESS ? failed("MPI_Wait on a gradient sum", rc) : 0;
}

static void c_progress(void *ctx)
{
    (void)ctx;
    int flag;
    if (g_nreq) MPI_Testall(g_nreq, g_req, &flag, MPI_STATUSES_IGNORE);
}

const dp_comm *dist_comm(int overlap)
{
    static dp_comm c;
    if (g_size <= 1) return NULL;
    c = (dp_comm){.rank = g_rank, .size = g_size, .allreduce = c_allreduce};
    if (overlap) c.istart = c_istart, c.wait = c_wait, c.progress = c_progress;
    return &c;
}

int dist_max(int v)
{
    int rc;
    if (g_size > 1 && (rc = MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD)) != MPI_SUCCESS)
        failed("MPI_Allreduce of the ranks' state", rc), MPI_Abort(MPI_COMM_WORLD, 1);
    return v;
}

int dist_bcast(int v)
{
    int rc;
    if (g_size > 1 && (rc = MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD)) != MPI_SUCCESS)
        failed("MPI_Bcast of rank 0's state", rc), MPI_Abort(MPI_COMM_WORLD, 1);
    return v;
}

int dist_same(unsigned long long h)
{
    if (g_size <= 1) return 1;
    unsigned long long lo = h, hi = h;
    int rc = MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) failed("MPI_Allreduce of the weights' hash", rc), MPI_Abort(MPI_COMM_WORLD, 1);
    return lo == hi;
}

#else /* one process */

int dist_available(void) { return 0; }
int dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (getenv("OMPI_COMM_WORLD_SIZE") && atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1)
        return cli_fail("started by mpirun with %s ranks, but this dynopool was built without MPI "
                        "(install libopenmpi-dev and rebuild; docs/distributed.md)", getenv("OMPI_COMM_WORLD_SIZE"));
    return 0;
}
void dist_finalize(int agreed) { (void)agreed; }
const dp_comm *dist_comm(int overlap) { (void)overlap; return NULL; }
int dist_max(int v) { return v; }
int dist_bcast(int v) { return v; }
int dist_same(unsigned long long h) { (void)h; return 1; }

#endif
