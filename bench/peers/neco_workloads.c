/*
 * neco_workloads.c - three of the workloads written with neco
 * (github.com/tidwall/neco), a peer C coroutine library, for a comparison
 * run by hand (docs/benchmarks.md, "Beside neco"). neco is not packaged by
 * Debian and is not part of this repository; with its neco.c and neco.h
 * in the current directory:
 *
 *     gcc -O2 -DNDEBUG -c neco.c
 *     gcc -O2 -I. bench/peers/neco_workloads.c neco.o -o neco_workloads -lpthread
 *     ./neco_workloads yield|spawn_join|switch [SCALE]
 *
 * Prints the line the workloads print ('<workload> <ops> <seconds>
 * <ns_per_op>') and exits non-zero if the count is wrong.
 *   yield       2 coroutines each neco_yield() n times; ops = 2n
 *   spawn_join  neco_start a coroutine that returns at once and neco_join
 *               it, n times; ops = n
 *   switch      two coroutines ping-pong an int through two unbuffered
 *               channels (neco has no event), n round trips; ops = n
 * n = 1,000,000 x SCALE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "neco.h"

static long n;
static const char *workload;
static long count;
static int failed;
static neco_chan *ping, *pong;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void spinner(int argc, void *argv[])
{
    (void)argc, (void)argv;
    for (long i = 0; i < n; i++) {
        neco_yield();
        count++;
    }
}

static void trivial(int argc, void *argv[])
{
    (void)argc, (void)argv;
    count++;
}

static void ponger(int argc, void *argv[])
{
    (void)argc, (void)argv;
    int v;
    for (long i = 0; i < n; i++) {
        neco_chan_recv(ping, &v);
        v++;
        neco_chan_send(pong, &v);
    }
}

static long run_yield(void)
{
    neco_start(spinner, 0);
    int64_t a = neco_lastid();
    neco_start(spinner, 0);
    int64_t b = neco_lastid();
    neco_join(a);
    neco_join(b);
    failed = count != 2 * n;
    return 2 * n;
}

static long run_spawn_join(void)
{
    for (long i = 0; i < n; i++) {
        neco_start(trivial, 0);
        neco_join(neco_lastid());
    }
    failed = count != n;
    return n;
}

static long run_switch(void)
{
    neco_chan_make(&ping, sizeof(int), 0);
    neco_chan_make(&pong, sizeof(int), 0);
    neco_start(ponger, 0);
    int v = 0;
    for (long i = 0; i < n; i++) {
        neco_chan_send(ping, &v);
        neco_chan_recv(pong, &v);
    }
    neco_chan_release(ping);
    neco_chan_release(pong);
    failed = v != n;
    return n;
}

static void main_coroutine(int argc, void *argv[])
{
    (void)argc, (void)argv;
    double t0 = now_s();
    long ops;
    if (!strcmp(workload, "yield"))
        ops = run_yield();
    else if (!strcmp(workload, "spawn_join"))
        ops = run_spawn_join();
    else
        ops = run_switch();
    double seconds = now_s() - t0;
    printf("%s %ld %.6f %.1f\n", workload, ops, seconds, seconds * 1e9 / (double)ops);
}

int main(int argc, char **argv)
{
    if (argc < 2 ||
        (strcmp(argv[1], "yield") && strcmp(argv[1], "spawn_join") && strcmp(argv[1], "switch"))) {
        fprintf(stderr, "usage: neco_workloads yield|spawn_join|switch [SCALE]\n");
        return 2;
    }
    workload = argv[1];
    n = (long)(1e6 * (argc > 2 ? atof(argv[2]) : 1.0));
    if (n < 1)
        n = 1;
    neco_start(main_coroutine, 0);
    if (failed)
        fprintf(stderr, "%s: wrong count\n", workload);
    return failed;
}
