/*
 * A stream server (asyncio.start_server): listening sockets, a task that
 * accepts, and a task per connection running the caller's handler.
 *
 * One listener is waited on as any handle. Several (a host with several
 * addresses) are put in an epoll of the server's own, the poller, whose
 * readiness the serving task waits for, so that one accept loop serves
 * them all; they themselves are never registered with the loop.
 *
 * Each connection has a record of its own (its handle, its peer, its
 * task), on the server's list while its task lives. Connection tasks
 * start eagerly, so one that could never run (no stack, or cancelled by
 * the loop's close before its start) is seen by the accept loop, which
 * closes the connection; every other one closes and frees its own record
 * whatever ends it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fault.h"
#include "waitq.h"

struct cosync__conn {
    cosync__node node; /* on the server's list while its task lives */
    cosync_server *srv;
    cosync_io io;
    cosync_addr peer;
    cosync_task task;
    cosync_conn_fn handler;
    void *arg;
    bool in_spawn; /* its task's eager first step is under way */
    bool started;  /* its task has run */
    bool ended;    /* its handler returned in that first step */
};

_Static_assert(sizeof(((cosync_server *)0)->path) == sizeof(((struct sockaddr_un *)0)->sun_path),
               "a server keeps a whole sun_path");

/* How long an accept that failed for want of descriptors or memory waits
 * before it tries again (asyncio's ACCEPT_RETRY_DELAY). */
#define ACCEPT_RETRY_DELAY COSYNC_SEC(1)

static bool usable(const cosync_server *srv)
{
    return srv && srv->state != 0;
}

/* The server's tasks have all ended: wake its closed waiters if it is
 * closed, and free it from their loop. */
static void tasks_ended(cosync_server *srv)
{
    if (srv->serving || srv->nconns)
        return;
    srv->loop = NULL;
    if (srv->state == COSYNC__SERVER_CLOSED)
        cosync__waitq_grant_all(&srv->closed_q, 0);
}

/* The running task, if it may serve @srv or wait for it: COSYNC_EPERM
 * outside a task, or from another loop than the one of the server's
 * tasks. */
static int check_caller(const cosync_server *srv, struct cosync__task **cur)
{
    *cur = cosync__current();
    return !*cur || (srv->loop && srv->loop != (*cur)->loop) ? COSYNC_EPERM : 0;
}

/* The connection's task has ended, or never ran: close it, forget it. */
static void connection_ended(struct cosync__conn *c)
{
    cosync_server *srv = c->srv;
    (void)cosync_io_close(&c->io); /* the handler may have closed it */
    cosync__list_remove(&srv->conns, &c->node);
    srv->nconns--;
    cosync__mem_free(NULL, c);
    tasks_ended(srv);
}

static int serve_connection(void *arg, void **result)
{
    struct cosync__conn *c = arg;
    (void)result;
    c->started = true;
    int status = c->handler(&c->io, &c->peer, c->arg);
    if (status < 0 && status != COSYNC_ECANCELED)
        c->srv->failed++;
    if (c->in_spawn) /* ended in its first step: the spawner still reads c */
        c->ended = true;
    else
        connection_ended(c);
    return status;
}

/* Run @c's handler in a task of its own, started at once. */
static void start_connection(cosync_server *srv, struct cosync__conn *c,
                             const cosync_task_opts *opts)
{
    char name[COSYNC_ADDR_TEXT_MAX];
    cosync_task_opts o = opts ? *opts : (cosync_task_opts){0};
    if (!o.name || !*o.name) { /* named after its peer */
        if (cosync_addr_format(&c->peer, name, sizeof name) > 0)
            o.name = name;
    }
    cosync__list_push_back(&srv->conns, &c->node);
    srv->nconns++;
    srv->accepted++;
    c->in_spawn = true;
    int rc = cosync__spawn_started(&c->task, serve_connection, c, &o, &c->started);
    c->in_spawn = false;
    if (rc == 0) {
        if (c->ended)
            connection_ended(c);
        return;
    }
    /* the task never ran: the connection is refused by closing it */
    srv->failed++;
    connection_ended(c);
}

/* An accept failed for want of a resource that may come back. */
static bool worth_retrying(int rc)
{
    return rc == COSYNC_EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == COSYNC_ENOMEM;
}

static void pause_cancel(cosync__waiter *w)
{
    cosync__waitq_remove(&((cosync_server *)w->obj)->pause_q, w);
}

static void pause_describe(const cosync__waiter *w, char *buf, size_t size)
{
    snprintf(buf, size, "server %p (accepting paused: out of descriptors or memory)", w->obj);
}

static const cosync__waiter_ops pause_ops = {"server", pause_cancel, pause_describe, NULL};

/* Wait before the next accept, or until the server is closed (0);
 * COSYNC_ETIMEDOUT if @deadline comes first. */
static int pause_accepting(cosync_server *srv, int64_t deadline)
{
    int64_t at = cosync_deadline_after(ACCEPT_RETRY_DELAY);
    bool callers = deadline != COSYNC_FOREVER && deadline <= at;
    int rc = cosync__waitq_wait(&srv->pause_q, &pause_ops, srv, 0, callers ? deadline : at);
    return rc == COSYNC_ETIMEDOUT && !callers ? 0 : rc;
}

/* A Unix-domain listener's path (not an abstract name), and the file
 * its bind made, so that the close removes that file and no other
 * (asyncio 3.13's cleanup_socket). */
static void remember_socket_file(cosync_server *srv, const cosync_addr *addr)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&addr->u.storage;
    struct stat st;
    if (addr->u.sa.sa_family != AF_UNIX || un->sun_path[0] == '\0' ||
        strnlen(un->sun_path, sizeof un->sun_path) == sizeof un->sun_path ||
        stat(un->sun_path, &st) != 0)
        return;
    memcpy(srv->path, un->sun_path, sizeof srv->path);
    srv->path_dev = st.st_dev;
    srv->path_ino = st.st_ino;
}

static void remove_socket_file(cosync_server *srv)
{
    struct stat st;
    if (srv->path[0] && stat(srv->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == srv->path_dev && st.st_ino == srv->path_ino)
        (void)unlink(srv->path);
    srv->path[0] = '\0';
}

static void forget(cosync_server *srv)
{
    *srv = (cosync_server){.closed_q = COSYNC__WAITQ_INIT, .pause_q = COSYNC__WAITQ_INIT};
}

int cosync_server_listen(cosync_server *srv, const cosync_addr *addr, int backlog)
{
    if (!srv || !addr)
        return COSYNC_EINVAL;
    forget(srv);
    int rc = cosync_sock_listen(&srv->listeners[0], addr, backlog);
    if (rc == 0) {
        srv->nlisteners = 1;
        srv->state = COSYNC__SERVER_OPEN;
        remember_socket_file(srv, addr);
    }
    return rc;
}

int cosync_server_listen_fd(cosync_server *srv, int fd, int backlog)
{
    if (!srv || fd < 0 || backlog < 0)
        return COSYNC_EINVAL;
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    if (type != SOCK_STREAM)
        return COSYNC_EINVAL;
    forget(srv);
    if (listen(fd, backlog ? backlog : SOMAXCONN) < 0)
        return -errno;
    int rc = cosync_io_init(&srv->listeners[0], fd);
    if (rc)
        return rc;
    srv->nlisteners = 1;
    srv->state = COSYNC__SERVER_OPEN;
    cosync_addr bound;
    if (cosync_sock_local_addr(&srv->listeners[0], &bound) == 0)
        remember_socket_file(srv, &bound);
    return 0;
}

/* Times a listen on several addresses whose port is 0 starts again with
 * another free port, when the one the first was given is taken on
 * another address. */
#define PORT_TRIES 16

static void close_listeners(cosync_server *srv)
{
    while (srv->nlisteners)
        (void)cosync_io_close(&srv->listeners[--srv->nlisteners]);
}

static int port_of(const cosync_io *io)
{
    cosync_addr a;
    int rc = cosync_sock_local_addr(io, &a);
    return rc ? rc : cosync_addr_port(&a);
}

/* @a with the port @port (an IPv4 or IPv6 address). */
static void set_port(cosync_addr *a, int port)
{
    if (a->u.sa.sa_family == AF_INET)
        ((struct sockaddr_in *)&a->u.storage)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a->u.storage)->sin6_port = htons((uint16_t)port);
}

/* Listen on every address, those of port 0 on the port the first of them
 * is given. Returns 0, or the first failure with nothing left open; sets
 * *@retry when that failure is the given port's being taken elsewhere. */
static int open_listeners(cosync_server *srv, const cosync_addr *addrs, size_t n, int backlog,
                          bool *retry)
{
    int port = 0, rc = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        cosync_addr a = addrs[i];
        bool free_port = cosync_addr_port(&a) == 0;
        if (free_port && port)
            set_port(&a, port);
        cosync_io *l = &srv->listeners[srv->nlisteners];
        rc = cosync__sock_listen(l, &a, backlog, true);
        if (rc == COSYNC_EAFNOSUPPORT) { /* a family the system lacks */
            skipped = rc;
            rc = 0;
            continue;
        }
        if (rc) {
            *retry = rc == COSYNC_EADDRINUSE && free_port && port;
            break;
        }
        srv->nlisteners++;
        if (free_port && !port && (port = port_of(l)) < 0) {
            rc = port;
            break;
        }
    }
    if (rc == 0 && srv->nlisteners == 0)
        rc = skipped;
    if (rc)
        close_listeners(srv);
    return rc;
}

/* The epoll the serving task waits on for several listeners: each is in
 * it level-triggered, so that it is readable while any has a connection
 * waiting. */
static int open_poller(cosync_server *srv)
{
    int rc = cosync__epoll_open(&srv->poller);
    for (int i = 0; rc == 0 && i < srv->nlisteners; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(srv->poller.fd, EPOLL_CTL_ADD, srv->listeners[i].fd, &ev) < 0) {
            rc = -errno;
            (void)cosync_io_close(&srv->poller);
        }
    }
    return rc;
}

int cosync_server_listen_addrs(cosync_server *srv, const cosync_addr *addrs, size_t n, int backlog)
{
    if (!srv || !addrs || n == 0 || n > COSYNC_SERVER_MAX_LISTENERS || backlog < 0)
        return COSYNC_EINVAL;
    if (n == 1)
        return cosync_server_listen(srv, &addrs[0], backlog);
    for (size_t i = 0; i < n; i++) /* a Unix-domain address goes alone */
        if (addrs[i].u.sa.sa_family != AF_INET && addrs[i].u.sa.sa_family != AF_INET6)
            return COSYNC_EINVAL;
    forget(srv);
    int rc = 0;
    for (int tries = 0; tries < PORT_TRIES; tries++) {
        bool retry = false;
        if ((rc = open_listeners(srv, addrs, n, backlog, &retry)) == 0 || !retry)
            break;
    }
    if (rc == 0 && srv->nlisteners > 1 && (rc = open_poller(srv)) != 0)
        close_listeners(srv);
    if (rc == 0)
        srv->state = COSYNC__SERVER_OPEN;
    return rc;
}

static bool same_addr(const cosync_addr *a, const cosync_addr *b)
{
    return a->len == b->len && memcmp(&a->u.storage, &b->u.storage, a->len) == 0;
}

int cosync_server_listen_host(cosync_server *srv, const char *host, uint16_t port, int backlog,
                              int64_t deadline)
{
    if (!srv)
        return COSYNC_EINVAL;
    forget(srv);
    cosync_addr addrs[COSYNC_SERVER_MAX_LISTENERS];
    if (!host || !*host) { /* every interface: asyncio's host None, or "" */
        cosync_addr_ip(&addrs[0], "0.0.0.0", port);
        cosync_addr_ip(&addrs[1], "::", port);
        return cosync_server_listen_addrs(srv, addrs, 2, backlog);
    }
    int n =
        cosync_addr_resolve(host, port, AF_UNSPEC, addrs, COSYNC_SERVER_MAX_LISTENERS, deadline);
    if (n < 0)
        return n;
    size_t kept = 0; /* each address once, in the resolver's order */
    for (int i = 0; i < n; i++) {
        size_t j = 0;
        while (j < kept && !same_addr(&addrs[j], &addrs[i]))
            j++;
        if (j == kept)
            addrs[kept++] = addrs[i];
    }
    return cosync_server_listen_addrs(srv, addrs, kept, backlog);
}

int cosync_server_local_addr(const cosync_server *srv, cosync_addr *addr)
{
    if (!usable(srv) || !addr)
        return COSYNC_EINVAL;
    if (srv->state != COSYNC__SERVER_OPEN)
        return COSYNC_EBADF;
    return cosync_sock_local_addr(&srv->listeners[0], addr);
}

int cosync_server_local_addrs(const cosync_server *srv, cosync_addr *addrs, size_t cap)
{
    if (!usable(srv) || (!addrs && cap))
        return COSYNC_EINVAL;
    if (srv->state != COSYNC__SERVER_OPEN)
        return COSYNC_EBADF;
    for (size_t i = 0; i < cap && i < srv->nlisteners; i++) {
        int rc = cosync_sock_local_addr(&srv->listeners[i], &addrs[i]);
        if (rc)
            return rc;
    }
    return srv->nlisteners;
}

/* The next connection on any of the listeners, as cosync_sock_accept
 * returns it. Several are each tried in turn, from the one after the last
 * that gave a connection, so that none waits behind a busy one; then the
 * task waits for the poller. */
static int accept_next(cosync_server *srv, cosync_io *conn, cosync_addr *peer, int64_t deadline)
{
    int n = srv->nlisteners;
    if (n == 1)
        return cosync_sock_accept(&srv->listeners[0], conn, peer, deadline);
    for (;;) {
        for (int i = 0; i < n; i++) {
            int k = (srv->next + i) % n;
            int rc = cosync__sock_accept_now(&srv->listeners[k], conn, peer);
            if (rc != -EAGAIN) {
                srv->next = (uint8_t)((k + 1) % n);
                return rc;
            }
        }
        if (deadline == 0)
            return COSYNC_EAGAIN;
        int rc = cosync_io_wait(&srv->poller, COSYNC_IO_READ, deadline);
        if (rc < 0)
            return rc;
    }
}

/* The accept loop; the server is open and this task its only server. */
static int accept_loop(cosync_server *srv, cosync_conn_fn handler, void *arg,
                       const cosync_task_opts *opts, int64_t deadline)
{
    struct cosync__conn *c = NULL;
    int rc = 0;
    while (srv->state == COSYNC__SERVER_OPEN) {
        if (!c && !(c = cosync__mem_alloc(NULL, sizeof *c)))
            rc = COSYNC_ENOMEM;
        else if ((rc = accept_next(srv, &c->io, &c->peer, deadline)) == 0) {
            c->srv = srv;
            c->handler = handler;
            c->arg = arg;
            c->started = c->ended = false;
            start_connection(srv, c, opts);
            c = NULL;
            continue;
        }
        if (srv->state != COSYNC__SERVER_OPEN) /* closed meanwhile: the accept's EBADF */
            rc = 0;
        else if (worth_retrying(rc) && deadline != 0)
            rc = pause_accepting(srv, deadline);
        if (rc != 0)
            break;
    }
    cosync__mem_free(NULL, c);
    return rc;
}

int cosync_server_serve(cosync_server *srv, cosync_conn_fn handler, void *arg,
                        const cosync_task_opts *opts, int64_t deadline)
{
    if (!usable(srv) || !handler)
        return COSYNC_EINVAL;
    if (srv->state != COSYNC__SERVER_OPEN)
        return COSYNC_EBADF;
    if (srv->serving)
        return COSYNC_EBUSY;
    struct cosync__task *cur;
    int rc = check_caller(srv, &cur);
    if (rc)
        return rc;
    srv->serving = 1;
    srv->loop = cur->loop;
    rc = accept_loop(srv, handler, arg, opts, deadline);
    srv->serving = 0;
    if (rc == COSYNC_ECANCELED || rc == COSYNC_ETIMEDOUT)
        (void)cosync_server_close(srv); /* serve_forever's cancel closes the server */
    tasks_ended(srv);
    return rc;
}

int cosync_server_close(cosync_server *srv)
{
    if (!usable(srv))
        return COSYNC_EINVAL;
    if (srv->state == COSYNC__SERVER_CLOSED)
        return 0;
    /* a task in accept gets COSYNC_EBADF; the handle of another loop
     * (the one listener, or the poller of several) refuses, and nothing
     * changes */
    int rc = cosync_io_close(srv->nlisteners > 1 ? &srv->poller : &srv->listeners[0]);
    if (rc == COSYNC_EPERM)
        return rc;
    close_listeners(srv);
    srv->state = COSYNC__SERVER_CLOSED;
    remove_socket_file(srv);
    cosync__waitq_grant_all(&srv->pause_q, 0);
    tasks_ended(srv);
    return 0;
}

int cosync_server_close_clients(cosync_server *srv)
{
    if (!usable(srv))
        return COSYNC_EINVAL;
    for (cosync__node *n = srv->conns.head; n; n = n->next)
        (void)cosync_task_cancel(cosync__container_of(n, struct cosync__conn, node)->task);
    return 0;
}

static void closed_cancel(cosync__waiter *w)
{
    cosync__waitq_remove(&((cosync_server *)w->obj)->closed_q, w);
}

static void closed_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_server *srv = w->obj;
    snprintf(buf, size, "server %p (%s; connections: %zu)", w->obj,
             srv->state == COSYNC__SERVER_OPEN ? "open" : "closed", srv->nconns);
}

static const cosync__waiter_ops closed_ops = {"server", closed_cancel, closed_describe, NULL};

int cosync_server_wait_closed(cosync_server *srv, int64_t deadline)
{
    if (!usable(srv))
        return COSYNC_EINVAL;
    if (srv->state == COSYNC__SERVER_CLOSED && srv->nconns == 0 && !srv->serving)
        return 0;
    if (deadline == 0)
        return COSYNC_EAGAIN;
    struct cosync__task *cur;
    int rc = check_caller(srv, &cur);
    if (rc)
        return rc;
    for (cosync__node *n = srv->conns.head; n; n = n->next)
        if (cosync__container_of(n, struct cosync__conn, node)->task.rec == cur)
            return COSYNC_EDEADLK; /* a handler waiting for its own end */
    return cosync__waitq_wait(&srv->closed_q, &closed_ops, srv, 0, deadline);
}

int cosync_server_destroy(cosync_server *srv)
{
    if (!usable(srv))
        return COSYNC_EINVAL;
    if (srv->serving || srv->nconns || !cosync__waitq_empty(&srv->closed_q))
        return COSYNC_EBUSY;
    int rc = cosync_server_close(srv); /* COSYNC_EPERM: another loop's listener */
    if (rc == 0)
        srv->state = 0;
    return rc;
}

int cosync_server_get_stats(const cosync_server *srv, cosync_server_stats *stats)
{
    if (!srv || !stats)
        return COSYNC_EINVAL;
    *stats = (cosync_server_stats){
        .connections = srv->nconns,
        .accepted = srv->accepted,
        .failed = srv->failed,
        .serving = srv->serving,
        .open = srv->state == COSYNC__SERVER_OPEN,
    };
    return 0;
}
