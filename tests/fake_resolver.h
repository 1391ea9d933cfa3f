/*
 * fake_resolver.h - a test program's own getaddrinfo, so that no test asks
 * a real resolver about any name but "localhost".
 *
 * The program defines getaddrinfo itself, which the executable's calls
 * (the library's among them) reach instead of libc's: names under ".test"
 * it answers with fake_list(), any other it passes to libc's
 * (real_getaddrinfo()). This header defines freeaddrinfo, which frees the
 * lists fake_list() made (counting them in fake_frees) and passes the
 * others to libc's. Include it in one file of a program linked
 * dynamically (dlsym's RTLD_NEXT), after check.h.
 */
#ifndef COSYNC_TESTS_FAKE_RESOLVER_H
#define COSYNC_TESTS_FAKE_RESOLVER_H

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"

static const char fake_mark[] = "fake"; /* ai_canonname of the lists made here */
static atomic_int fake_frees;           /* lists made here and freed */

/* Whether @addr is a loopback address (127/8 or ::1): the only kind a
 * name the tests resolve for real ("localhost") may give. */
static bool is_loopback(const cosync_addr *addr)
{
    if (addr->u.sa.sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&addr->u.storage)->sin_addr.s_addr) >> 24) ==
               127;
    return addr->u.sa.sa_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&addr->u.storage)->sin6_addr);
}

/* Whether @host is one of the names this program answers. */
static bool ends_with_test(const char *host)
{
    size_t n = host ? strlen(host) : 0;
    return n >= 5 && strcmp(host + n - 5, ".test") == 0;
}

/* A list of the addresses @ips (IPv4, or IPv6 if they have a ':'), each
 * with @service's port. */
static struct addrinfo *fake_list(const char *const *ips, int n, const char *service)
{
    struct addrinfo *head = NULL, **tail = &head;
    uint16_t port = htons((uint16_t)atoi(service));
    for (int i = 0; i < n; i++) {
        struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_in6));
        CHECK_NOTNULL(ai);
        if (strchr(ips[i], ':')) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(ai + 1);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = port;
            CHECK_EQ(inet_pton(AF_INET6, ips[i], &sin6->sin6_addr), 1);
            ai->ai_addrlen = sizeof *sin6;
        } else {
            struct sockaddr_in *sin = (struct sockaddr_in *)(ai + 1);
            sin->sin_family = AF_INET;
            sin->sin_port = port;
            CHECK_EQ(inet_pton(AF_INET, ips[i], &sin->sin_addr), 1);
            ai->ai_addrlen = sizeof *sin;
        }
        ai->ai_family = ((struct sockaddr *)(ai + 1))->sa_family;
        ai->ai_socktype = SOCK_STREAM;
        ai->ai_addr = (struct sockaddr *)(ai + 1);
        ai->ai_canonname = (char *)fake_mark;
        *tail = ai;
        tail = &ai->ai_next;
    }
    return head;
}

/* libc's getaddrinfo. */
static int real_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(
            RTLD_NEXT, "getaddrinfo");
    CHECK_NOTNULL(real);
    return real(host, service, hints, res);
}

void freeaddrinfo(struct addrinfo *list)
{
    if (list && list->ai_canonname == fake_mark) {
        while (list) {
            struct addrinfo *next = list->ai_next;
            free(list);
            list = next;
        }
        atomic_fetch_add(&fake_frees, 1);
        return;
    }
    void (*real)(struct addrinfo *) = (void (*)(struct addrinfo *))dlsym(RTLD_NEXT, "freeaddrinfo");
    CHECK_NOTNULL(real);
    real(list);
}

#endif /* COSYNC_TESTS_FAKE_RESOLVER_H */
