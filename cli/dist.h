/* dist.h — the processes of a data-parallel `dynopool train` (docs/distributed.md):
 * Open MPI behind a few calls, and the engine's communicator (dp_comm) over it.
 * Without MPI (built with -DDYNOPOOL_MPI=OFF, or not started by mpirun) there is
 * one rank and every call is a no-op. */
#ifndef CLI_DIST_H
#define CLI_DIST_H

#include "dynopool.h"

/* Starts MPI when mpirun (or another PMIx launcher) started this process; ranks
 * other than 0 then write nothing to stdout.  0, or 1 after saying why. */
int dist_init(int *argc, char ***argv);
/* agreed: every rank knows of the outcome; else (a failure of this rank alone)
 * MPI_Abort ends the job rather than leave the others in a collective. */
void dist_finalize(int agreed);
int dist_rank(void);
int dist_size(void);
/* 1 when this build can run several ranks (MPI compiled in). */
int dist_available(void);
/* The engine's communicator (NULL with one rank); overlap: start bucket sums
 * during the backward pass (istart/wait) rather than after it. */
const dp_comm *dist_comm(int overlap);
/* Collective: the largest of the ranks' v; rank 0's v. */
int dist_max(int v);
int dist_bcast(int v);
/* Collective: 1 when every rank's h is the same. */
int dist_same(unsigned long long h);
/* Seconds spent in the communicator's allreduce and wait calls so far. */
double dist_comm_seconds(void);

#endif
